"""A participant's whole record as JSON: the subject access export."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from assistant.care.measures import measures_for_export, participant_trajectory
from assistant.care.privacy import consents
from assistant.care.rhythm import rhythm_of
from assistant.contact.appointments import ladder_attempts
from assistant.db.models import (
    Answer,
    Appointment,
    DueTask,
    Flag,
    JobStart,
    Message,
    Participant,
    Service,
    Specialist,
)
from assistant.engine.rhythm import describe
from assistant.reporting.formats import ATTRIBUTION


class NotFound(LookupError):
    pass


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def find_participant(db: Session, external_id: str, service: str | None = None) -> Participant:
    query = select(Participant).where(Participant.external_id == external_id)
    if service:
        query = query.join(Service, col(Service.id) == Participant.service_id).where(Service.slug == service)
    found = db.exec(query).all()
    if not found:
        raise NotFound(f"no participant {external_id!r}")
    if len(found) > 1:
        raise NotFound(f"{external_id!r} exists in more than one service: name the service")
    return found[0]


def export_participant(db: Session, participant: Participant) -> dict[str, Any]:
    assert participant.id is not None
    specialist = db.get(Specialist, participant.specialist_id)
    service = db.get(Service, participant.service_id)
    messages = db.exec(select(Message).where(Message.participant_id == participant.id).order_by(col(Message.id))).all()
    answers = db.exec(select(Answer).where(Answer.participant_id == participant.id).order_by(col(Answer.id))).all()
    flags = db.exec(select(Flag).where(Flag.participant_id == participant.id).order_by(col(Flag.id))).all()
    return {
        **_person(participant, specialist, service),
        "messages": [_message(m) for m in messages],
        "answers": [
            {"flow": a.flow, "question": a.question, "value": a.value, "raw": a.raw, "at": _iso(a.at), "late": a.late}
            for a in answers
        ],
        "appointments": _appointments(db, participant.id),
        "measures": measures_for_export(db, participant.id),
        "consent": consents(db, participant.id),
        "trajectory": participant_trajectory(db, participant.id),
        "measures_attribution": ATTRIBUTION,
        "flags": [_flag(f) for f in flags],
        "reply_rhythm": _rhythm(db, participant),
        "journey": _journey(db, participant),
    }


def _journey(db: Session, participant: Participant) -> dict[str, Any]:
    """The two ends of their time with the service: the referral, work found, and the exit."""
    jobs = db.exec(select(JobStart).where(JobStart.participant_id == participant.id).order_by(col(JobStart.id))).all()
    return {
        "referral_date": participant.referral_date.isoformat() if participant.referral_date else None,
        "referral_source": participant.referral_source,
        "job_starts": [
            {
                "started_on": j.started_on.isoformat(),
                "hours_per_week": j.hours_per_week,
                "employer": j.employer,
                "sector": j.sector,
                "recorded_by": j.recorded_by,
                "recorded_at": _iso(j.recorded_at),
                "sustainment_answers_by_weeks": dict(j.sustainment),
            }
            for j in jobs
        ],
        "exit_reason": participant.exit_reason,
        "exit_recorded_at": _iso(participant.exit_recorded_at),
        "exit_recorded_by": participant.exit_recorded_by,
    }


def _rhythm(db: Session, participant: Participant) -> dict[str, Any]:
    """The numbers kept about how they usually answer, and what the service reads from them."""
    rhythm, row = rhythm_of(db, participant)
    return {
        "in_words": describe(rhythm),
        "texts_asking_for_an_answer": rhythm.asks,
        "answered": rhythm.answered,
        # Over answered texts, the sum and sum of squares of ln(hours to reply): their spread.
        "log_hours_sum": rhythm.log_hours_sum,
        "log_hours_squares_sum": rhythm.log_hours_sq,
        "unanswered_since_their_last_text": rhythm.pending,
        "first_unanswered_at": _iso(row.first_pending_at) if row else None,
        "last_asked_at": _iso(row.last_ask_at) if row else None,
        "done_about_this_silence": (row.noted or "nothing yet") if row and row.pending else None,
    }


def _person(participant: Participant, specialist: Specialist | None, service: Service | None) -> dict[str, Any]:
    """Who the participant is, who supports them, and how and when they are contacted."""
    return {
        "participant_id": participant.external_id,
        "service": service.slug if service else None,
        "first_name": participant.first_name,
        "phone": participant.phone,
        "specialist": {"email": specialist.email, "name": specialist.name} if specialist else None,
        "cohort": participant.cohort,
        "checkin": {
            "day": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][participant.checkin_day],
            "time": participant.checkin_time,
            "every_weeks": participant.checkin_every_weeks,
            "timezone": participant.timezone,
        },
        "language": participant.language,
        "support_start": participant.support_started_on.isoformat() if participant.support_started_on else None,
        "support_end": participant.support_ends_on.isoformat() if participant.support_ends_on else None,
        "opted_out": participant.opted_out,
        "unreachable": participant.unreachable,
        "paused": participant.paused,
    }


def _appointments(db: Session, participant_id: int) -> list[dict[str, Any]]:
    """Each appointment with its reminders and the follow-up attempts after a missed one."""
    tasks = db.exec(select(DueTask).where(DueTask.participant_id == participant_id).order_by(col(DueTask.id))).all()
    appointments = []
    for a in db.exec(
        select(Appointment).where(Appointment.participant_id == participant_id).order_by(col(Appointment.starts_at))
    ).all():
        reminders = [
            {
                "kind": t.kind,
                "due_at": _iso(t.due_at),
                "status": t.status,
                "outcome": t.outcome,
                "done_at": _iso(t.done_at),
            }
            for t in tasks
            if t.kind in ("appt_reminder", "interview_good_luck") and t.payload.get("appointment_id") == a.id
        ]
        appointments.append(
            {
                "appointment_id": a.external_id,
                "starts_at": _iso(a.starts_at),
                "duration_minutes": a.duration_minutes,
                "kind": a.kind,
                "location": a.location,
                "with": a.with_whom,
                "outcome": a.outcome,
                "outcome_at": _iso(a.outcome_at),
                "confirmed_at": _iso(a.confirmed_at),
                "cancellation_requested_at": _iso(a.cancellation_requested_at),
                "reminders": reminders,
                "reminders_sent": sum(1 for r in reminders if r["outcome"] == "sent"),
                "follow_up_attempts": ladder_attempts(db, participant_id, a.id or 0),
            }
        )
    return appointments


def _message(m: Message) -> dict[str, Any]:
    return {
        "direction": m.direction,
        "body": m.body,
        "at": _iso(m.at),
        "status": m.status,
        "flow": m.flow,
        "key": m.message_key,
        "sent_at": _iso(m.sent_at),
        "error_code": m.error_code,
    }


def _flag(f: Flag) -> dict[str, Any]:
    return {
        "kind": f.kind,
        "severity": f.severity,
        "status": f.status,
        "reason": f.reason,
        "at": _iso(f.created_at),
        "evidence": f.evidence,
        "acknowledged_at": _iso(f.acknowledged_at),
        "acknowledged_by": f.acknowledged_by,
        "resolved_at": _iso(f.resolved_at),
        "resolved_by": f.resolved_by,
        "note": f.note,
    }
