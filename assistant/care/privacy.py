"""Consent per purpose, erasure, and retention: the parts of a Data Protection Impact Assessment
the assistant can answer by itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from assistant.care.flags import raise_flag
from assistant.db.models import (
    Answer,
    Appointment,
    Consent,
    ContactLog,
    DueTask,
    Flag,
    FlowSession,
    JobStart,
    Message,
    Notification,
    Participant,
    SessionStatus,
    StaffTask,
    StaffTaskStatus,
    TaskStatus,
)
from assistant.db.service_settings import settings_for
from assistant.outbox.writer import withdraw_outbox

PURPOSES = {
    "sms_contact": "Contact by text message for their employment support",
    "evaluation": "Use of their (de-identified) data to evaluate the service",
    "share_with_referrer": "Sharing updates with the service that referred them",
}
BASES = ("consent", "public_task", "legitimate_interests", "vital_interests")


class PrivacyError(ValueError):
    pass


def record_consent(
    db: Session,
    participant: Participant,
    purpose: str,
    *,
    granted: bool,
    by: str,
    now: datetime,
    lawful_basis: str = "consent",
    note: str = "",
) -> Consent:
    """Record a grant or withdrawal; a withdrawal of text contact takes effect at once."""
    if purpose not in PURPOSES:
        raise PrivacyError(f"unknown purpose {purpose!r}: one of {', '.join(PURPOSES)}")
    if lawful_basis not in BASES:
        raise PrivacyError(f"unknown lawful basis {lawful_basis!r}: one of {', '.join(BASES)}")
    assert participant.id is not None
    row = Consent(
        participant_id=participant.id,
        purpose=purpose,
        granted=granted,
        lawful_basis=lawful_basis,
        recorded_by=by[:254],
        recorded_at=now,
        note=note[:500],
    )
    db.add(row)
    if purpose == "sms_contact" and participant.sms_consent != granted:
        participant.sms_consent = granted
        participant.updated_at = now
        db.add(participant)
        if not granted:
            withdraw_outbox(db, participant.id, reason="consent_withdrawn")
            raise_flag(
                db,
                participant,
                kind="consent_withdrawn",
                severity="action",
                reason="Consent to text contact was withdrawn: automated texts have stopped",
                now=now,
                evidence={"recorded_by": by},
            )
    db.flush()
    return row


def consents(db: Session, participant_id: int) -> dict[str, dict[str, Any]]:
    """The consent in force per purpose (latest row), with who recorded it and when."""
    current: dict[str, dict[str, Any]] = {}
    for row in db.exec(select(Consent).where(Consent.participant_id == participant_id).order_by(col(Consent.id))).all():
        current[row.purpose] = {
            "granted": row.granted,
            "lawful_basis": row.lawful_basis,
            "recorded_by": row.recorded_by,
            "recorded_at": row.recorded_at.isoformat() if row.recorded_at else None,
        }
    return current


@dataclass
class ErasureReport:
    removed: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = ["Removed or anonymised:"]
        out += [f"  {what}: {count}" for what, count in self.removed.items()]
        out.append("Kept, with nothing that identifies the person, for the service's counts:")
        out += [f"  {what}: {count}" for what, count in self.kept.items()]
        return out


ERASED = "[erased]"


def erase(db: Session, participant: Participant, now: datetime) -> ErasureReport:
    """Irreversibly anonymise a participant: names, phone, message text, free text, places and notes go;
    the shape of the record (times, directions, statuses, answer values, scores, outcomes) stays for counts."""
    assert participant.id is not None
    pid = participant.id
    report = ErasureReport()
    messages, answers, appointments = _erase_free_text(db, pid, report)
    flags = _erase_notes(db, pid, report)
    _end_open_work(db, pid, now)
    _anonymise_participant(db, participant, now, report)
    report.kept = {
        "messages (direction, time, status)": len(messages),
        "answers (question and value)": len(answers),
        "appointments (time, kind, outcome)": len(appointments),
        "flags (kind, severity, times)": len(flags),
        "questionnaire scores": _count_measures(db, pid),
    }
    return report


def _erase_free_text(
    db: Session, pid: int, report: ErasureReport
) -> tuple[Sequence[Message], Sequence[Answer], Sequence[Appointment]]:
    """Message texts and numbers, free-text answers, appointment places and names, employer names."""
    messages = db.exec(select(Message).where(Message.participant_id == pid)).all()
    for message in messages:
        message.body, message.phone, message.error_message = ERASED, "", None
        db.add(message)
    report.removed["message texts and phone numbers"] = len(messages)
    answers = db.exec(select(Answer).where(Answer.participant_id == pid)).all()
    free = 0
    for answer in answers:
        if answer.raw is not None:
            answer.raw, free = None, free + 1
            db.add(answer)
    report.removed["free-text answers"] = free
    appointments = db.exec(select(Appointment).where(Appointment.participant_id == pid)).all()
    for appointment in appointments:
        appointment.location, appointment.with_whom = "", ""
        db.add(appointment)
    report.removed["appointment places and names"] = len(appointments)
    jobs = db.exec(select(JobStart).where(JobStart.participant_id == pid)).all()
    for job in jobs:
        job.employer = ""
        db.add(job)
    report.removed["employer names"] = len(jobs)
    return messages, answers, appointments


def _erase_notes(db: Session, pid: int, report: ErasureReport) -> Sequence[Flag]:
    """Contact-log notes, flag notes and evidence, and the bodies of the email sent about the flags."""
    logs = db.exec(select(ContactLog).where(ContactLog.participant_id == pid)).all()
    for log in logs:
        log.note = ""
        db.add(log)
    flags = db.exec(select(Flag).where(Flag.participant_id == pid)).all()
    for flag in flags:
        flag.note, flag.evidence = None, [{"at": e.get("at")} for e in flag.evidence]
        flag.next_notice_at = None  # nobody can be reached about a record that is gone: no more reminders
        db.add(flag)
    notes = db.exec(select(Notification).where(col(Notification.flag_id).in_([f.id for f in flags]))).all()
    for note in notes:
        note.body = ERASED
        db.add(note)
    report.removed["contact-log and flag notes, email bodies"] = len(logs) + len(flags) + len(notes)
    return flags


def _end_open_work(db: Session, pid: int, now: datetime) -> None:
    """Sessions emptied (open ones ended), pending tasks and open staff tasks cancelled, the outbox withdrawn."""
    for session in db.exec(select(FlowSession).where(FlowSession.participant_id == pid)).all():
        session.state = {"erased": True}
        if session.status in (SessionStatus.WAITING, SessionStatus.ON_PAGE):  # on_page: a questionnaire's private page
            session.status, session.ended_at, session.end_reason, session.wait_until = (
                SessionStatus.ENDED,
                now,
                "erased",
                None,
            )
        db.add(session)
    for task in db.exec(
        select(DueTask).where(DueTask.participant_id == pid, DueTask.status == TaskStatus.PENDING)
    ).all():
        task.status, task.outcome, task.done_at = TaskStatus.CANCELLED, "erased", now
        db.add(task)
    for staff_task in db.exec(
        select(StaffTask).where(StaffTask.participant_id == pid, StaffTask.status == StaffTaskStatus.OPEN)
    ).all():
        staff_task.status, staff_task.done_at, staff_task.done_by = StaffTaskStatus.CANCELLED, now, "erased"
        db.add(staff_task)
    withdraw_outbox(db, pid, reason="erased")


def _anonymise_participant(db: Session, participant: Participant, now: datetime, report: ErasureReport) -> None:
    """The participant row keeps no name, number, service id or tags, and can never be contacted again."""
    pid = participant.id
    participant.first_name = ERASED
    participant.phone = f"erased:{pid}"
    participant.external_id = f"erased-{pid}"
    participant.tags, participant.opted_out, participant.paused, participant.sms_consent = [], True, True, False
    participant.erased_at = now
    db.add(participant)
    report.removed["name, phone number, service id and tags"] = 1


def _count_measures(db: Session, participant_id: int) -> int:
    from assistant.db.models import Measure

    return len(db.exec(select(Measure.id).where(Measure.participant_id == participant_id)).all())


def due_for_retention(db: Session, today: date) -> list[Participant]:
    """Participants whose support ended longer ago than their service keeps records."""
    due = []
    for participant in db.exec(
        select(Participant).where(col(Participant.erased_at).is_(None), col(Participant.support_ends_on).is_not(None))
    ).all():
        months = settings_for(db, participant).retention_months_after_support
        assert participant.support_ends_on is not None
        if months and participant.support_ends_on + timedelta(days=round(months * 30.44)) <= today:
            due.append(participant)
    return due
