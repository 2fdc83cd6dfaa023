"""Appointments: reminders people answer, and missed-appointment follow-ups that never give up.

Reminders and follow-up attempts are due rows; each remembers the appointment
version it was planned for, so a moved or cancelled appointment's old reminders
are skipped. The assistant never discharges, closes or pauses a case.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from assistant.care.flags import raise_flag
from assistant.contact import dna_ladder
from assistant.db.models import (
    Appointment,
    DueTask,
    FlowSession,
    Message,
    Participant,
    SessionStatus,
    TaskStatus,
)
from assistant.db.open_items import LADDER_PENDING, LADDER_TASKS, pending_tasks
from assistant.db.rows import get_row
from assistant.db.service_settings import settings_for
from assistant.engine import RecordAnswer
from assistant.outbox.writer import withdraw_outbox
from assistant.runtime import Runtime
from assistant.sessions.lifecycle import end_session
from assistant.timing import local_at, parse_hhmm

KINDS = ("meeting", "phone_call", "video_call", "job_interview", "other")
OUTCOMES = ("attended", "dna", "cancelled_by_participant", "cancelled_by_service", "rescheduled")
CLOSED = ("cancelled_by_participant", "cancelled_by_service", "rescheduled")
REMINDER_TASKS = ("appt_reminder", "interview_good_luck")


def day_and_time(starts_at: datetime, tz: str) -> str:
    """'Tue 24 Nov at 10:30', in local time."""
    local = starts_at.astimezone(ZoneInfo(tz))
    return f"{local.strftime('%a')} {local.day} {local.strftime('%b')} at {local:%H:%M}"


def describe_when(starts_at: datetime, now: datetime, tz: str) -> str:
    """'today at 10:30', 'tomorrow at 10:30' or 'on Tue 24 Nov at 10:30', in local time."""
    zone = ZoneInfo(tz)
    local, today = starts_at.astimezone(zone), now.astimezone(zone).date()
    if local.date() == today:
        return f"today at {local:%H:%M}"
    if local.date() == today + timedelta(days=1):
        return f"tomorrow at {local:%H:%M}"
    return f"on {day_and_time(starts_at, tz)}"


def appointment_vars(appointment: Appointment, participant: Participant, now: datetime) -> dict[str, Any]:
    assert appointment.starts_at is not None
    return {
        "appointment_id": appointment.id,
        "appointment_version": appointment.version,
        "appointment_at": appointment.starts_at.isoformat(),
        "kind": appointment.kind,
        "when": describe_when(appointment.starts_at, now, participant.timezone),
        # A place is only ever texted to someone who chose that: lock screens show texts.
        "place": appointment.location if participant.show_location else "",
    }


def _task(db: Session, participant_id: int, kind: str, due: datetime, now: datetime, **payload: Any) -> DueTask:
    task = DueTask(participant_id=participant_id, kind=kind, due_at=due, created_at=now, payload=payload)
    db.add(task)
    db.flush()
    return task


def cancel_tasks(db: Session, appointment: Appointment, kinds: tuple[str, ...], outcome: str, now: datetime) -> int:
    tasks = db.exec(pending_tasks(appointment.participant_id, *kinds)).all()
    count = 0
    for task in tasks:
        if task.payload.get("appointment_id") == appointment.id:
            task.status, task.outcome, task.done_at = TaskStatus.CANCELLED, outcome, now
            db.add(task)
            count += 1
    return count


def withdraw_reminder_messages(db: Session, appointment: Appointment, reason: str, now: datetime) -> None:
    """A moved or cancelled appointment: its queued reminders never go, and no reminder waits on a reply."""
    sessions = db.exec(
        select(FlowSession).where(
            FlowSession.participant_id == appointment.participant_id,
            col(FlowSession.flow).in_(("appointment_reminder", "interview_good_luck")),
        )
    ).all()
    mine = [s for s in sessions if s.state.get("vars", {}).get("appointment_id") == appointment.id]
    for session in mine:
        if session.status == SessionStatus.WAITING:
            end_session(db, session, reason, now)
            session.version += 1
    ids = [s.id for s in mine if s.id is not None]
    if not ids:
        return
    withdraw_outbox(db, reason=reason, session_ids=ids)


# An appointment booked after its reminder times have passed gets one reminder as soon as texts may
# go, if it is at least this far off (nearer, the person has just arranged it with someone).
CATCH_UP_AT_LEAST = timedelta(hours=3)


def plan_reminders(db: Session, appointment: Appointment, participant: Participant, now: datetime) -> list[DueTask]:
    """Reminders N days before at the service's reminder time (one now, if booked after they would
    all have gone); interviews also get a good-luck text."""
    assert appointment.id is not None and appointment.starts_at is not None and participant.id is not None
    settings = settings_for(db, participant)
    tz = participant.timezone
    local_day = appointment.starts_at.astimezone(ZoneInfo(tz)).date()
    interview = appointment.kind == "job_interview"
    days = settings.interview_reminder_days_before if interview else settings.reminder_days_before
    at = parse_hhmm(settings.reminder_time)
    reminders = [(local_at(local_day - timedelta(days=d), at, tz), d) for d in sorted(set(days), reverse=True)]
    reminders = [(due, d) for due, d in reminders if now <= due < appointment.starts_at]
    if not reminders and days and now + CATCH_UP_AT_LEAST <= appointment.starts_at:
        reminders = [(now, (local_day - now.astimezone(ZoneInfo(tz)).date()).days)]
    planned = [
        _task(
            db,
            participant.id,
            "appt_reminder",
            due,
            now,
            appointment_id=appointment.id,
            appointment_version=appointment.version,
            days_before=days_before,
        )
        for due, days_before in reminders
    ]
    if interview:
        due = local_at(local_day, parse_hhmm(settings.interview_good_luck_time), tz)
        if now <= due < appointment.starts_at - timedelta(minutes=30):
            planned.append(
                _task(
                    db,
                    participant.id,
                    "interview_good_luck",
                    due,
                    now,
                    appointment_id=appointment.id,
                    appointment_version=appointment.version,
                )
            )
    return planned


def replan(
    db: Session, appointment: Appointment, participant: Participant, now: datetime, reason: str
) -> list[DueTask]:
    """The appointment's texts planned again from now: those it has now (none once it has passed)."""
    cancel_tasks(db, appointment, REMINDER_TASKS, reason, now)
    withdraw_reminder_messages(db, appointment, reason, now)
    if appointment.outcome is None and appointment.starts_at and appointment.starts_at > now:
        return plan_reminders(db, appointment, participant, now)
    return []


def start_ladder(db: Session, appointment: Appointment, participant: Participant, now: datetime) -> DueTask | None:
    """A missed appointment: plan the first follow-up (assistant/contact/dna_ladder.py plans the rest)."""
    assert appointment.id is not None and participant.id is not None
    existing = db.exec(
        select(DueTask).where(DueTask.participant_id == participant.id, col(DueTask.kind).in_(LADDER_TASKS))
    ).all()
    if any(t.payload.get("appointment_id") == appointment.id and t.status != TaskStatus.CANCELLED for t in existing):
        return None  # already following this one up: marking DNA twice starts nothing twice
    return dna_ladder.start(db, appointment, participant, now)


def replied_since(db: Session, participant_id: int, since: datetime) -> bool:
    return (
        db.exec(
            select(Message.id).where(
                Message.participant_id == participant_id, Message.direction == "in", col(Message.at) > since
            )
        ).first()
        is not None
    )


def on_inbound(db: Session, participant: Participant, inbound: Message, now: datetime) -> None:
    """Any reply ends a follow-up ladder and tells the specialist."""
    assert participant.id is not None
    if db.execute(LADDER_PENDING, {"participant_id": participant.id}).first() is None:
        return
    pending = db.exec(pending_tasks(participant.id, *LADDER_TASKS)).all()
    for task in pending:
        task.status, task.outcome, task.done_at = "cancelled", "replied", now
        db.add(task)
    if pending:
        raise_flag(
            db,
            participant,
            kind="dna_replied",
            severity="info",
            reason="Replied after a missed appointment",
            now=now,
            evidence={"message_id": inbound.id, "appointment_id": pending[0].payload.get("appointment_id")},
        )


def ladder_attempts(db: Session, participant_id: int, appointment_id: int) -> list[dict[str, Any]]:
    return dna_ladder.attempts(db, participant_id, appointment_id)


def attendance_answered(
    db: Session, rt: Runtime, participant: Participant, row: FlowSession, answer: RecordAnswer, now: datetime
) -> None:
    """The reminder flow's `on_answer` effect for its attendance question."""
    record_answer_effect(db, row, answer.question, answer.value, now)


def record_answer_effect(db: Session, row: FlowSession, question: str, value: str, now: datetime) -> None:
    """A reminder answer changes the appointment: YES confirms, NO asks to rebook."""
    if row.flow != "appointment_reminder" or question != "attendance":
        return
    appointment_id = row.state.get("vars", {}).get("appointment_id")
    appointment = get_row(db, Appointment, appointment_id)
    if appointment is None:
        return
    if value == "yes":
        appointment.confirmed_at = now
    elif value == "no":
        appointment.cancellation_requested_at = now
    appointment.updated_at = now
    db.add(appointment)
