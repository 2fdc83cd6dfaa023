"""The end of the journey: support ends on a date a person set, for a reason they chose.

- Automated contact (check-ins, questionnaires, reminders, follow-ups, campaigns, sustainment
  checks) stops after `support_ends_on`. A planned end date (from the caseload import) is the
  last day of support: the end-of-support questionnaire still goes on it. An exit the
  specialist records ends support at once: nothing automated goes on or after its date.
- A goodbye text goes only if the specialist chooses it.
- Ending support is always a person's act: nothing here runs on its own, and no silence,
  missed appointment or unanswered text ever calls it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from assistant.contact.journey_state import local_today, support_ended
from assistant.contact.policy import may_get_a_text_from_staff
from assistant.db.models import (
    CampaignRecipient,
    DueTask,
    FlowSession,
    Participant,
    RecipientStatus,
    SessionStatus,
    TaskStatus,
)
from assistant.db.units import among
from assistant.outbox.writer import queue_sms, withdraw_outbox
from assistant.sessions.lifecycle import end_session

if TYPE_CHECKING:
    from assistant.runtime import Runtime

# Pre-coded exit reasons, as a specialist would name them (evaluations report these, 001 Table 9).
EXIT_REASONS = {
    "job": "Found work",
    "education": "Started education or training",
    "moved": "Moved away",
    "declined": "Chose to stop support",
    "unable_to_contact": "Unable to contact",
    "health": "Health got in the way",
    "transferred": "Moved to another service",
    "time_limit": "Reached the end of the support period",
    "other": "Other",
}
GOODBYE_KEY = "journey/goodbye"


class ExitError(ValueError):
    pass


def stop_automated_contact(db: Session, participant: Participant, now: datetime) -> int:
    """Cancel every planned contact, end any question waiting, withdraw queued automated texts."""
    assert participant.id is not None
    stopped = 0
    for task in db.exec(
        select(DueTask).where(DueTask.participant_id == participant.id, DueTask.status == TaskStatus.PENDING)
    ).all():
        task.status, task.outcome, task.done_at = TaskStatus.CANCELLED, "support_ended", now
        db.add(task)
        stopped += 1
    for row in db.exec(
        select(FlowSession).where(
            FlowSession.participant_id == participant.id, FlowSession.status == SessionStatus.WAITING
        )
    ).all():
        end_session(db, row, "support_ended", now)
        row.version += 1
    withdraw_outbox(db, participant.id, reason="support ended", automated_only=True)
    for recipient in db.exec(
        select(CampaignRecipient).where(
            CampaignRecipient.participant_id == participant.id, CampaignRecipient.status == RecipientStatus.PLANNED
        )
    ).all():
        recipient.status, recipient.reason = RecipientStatus.WITHDRAWN, "support ended"
        db.add(recipient)
    return stopped


def end_support(
    db: Session,
    participant: Participant,
    *,
    reason: str,
    ends_on: date,
    by: str,
    now: datetime,
) -> None:
    """Record an exit: the date support ended (today or earlier) and why. Contact stops at once.
    The caller decides about a goodbye text (send_goodbye) and owns the transaction."""
    if reason not in EXIT_REASONS:
        raise ExitError(f"exit reason must be one of {', '.join(EXIT_REASONS)}")
    if ends_on > local_today(participant, now):
        raise ExitError("the end date cannot be in the future: record the exit on the day support ends")
    if participant.support_started_on and ends_on < participant.support_started_on:
        raise ExitError("the end date is before support started")
    if participant.exit_reason is not None:
        raise ExitError("an exit is already recorded for this participant")
    participant.support_ends_on, participant.exit_reason = ends_on, reason
    participant.exit_recorded_at, participant.exit_recorded_by, participant.updated_at = now, by, now
    db.add(participant)
    stop_automated_contact(db, participant, now)


def send_goodbye(db: Session, rt: Runtime, participant: Participant, now: datetime) -> int | None:
    """The goodbye the specialist chose to send: in their name, like a text they wrote themselves.
    Returns its id, or None when nothing may go."""
    if not may_get_a_text_from_staff(participant):
        return None
    return queue_sms(db, rt, participant, GOODBYE_KEY, now)


def ended_among(db: Session, participant_ids: list[int], now: datetime) -> set[int]:
    """Of these participants, those whose support has ended (one query for a campaign batch)."""
    if not participant_ids:
        return set()
    rows = db.exec(
        select(Participant).where(
            among(db, Participant.id, participant_ids), col(Participant.support_ends_on).is_not(None)
        )
    ).all()
    return {p.id for p in rows if p.id is not None and support_ended(p, now)}
