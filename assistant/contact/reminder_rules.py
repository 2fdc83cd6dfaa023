"""When a planned appointment reminder should not go after all.

- A NO respected: once the participant has said they can't make it (a NO to an earlier
  reminder, or a cancellation the reminder read as its NO), no later reminder asks them to
  reply YES to confirm. A reminder planned after that (the specialist moved the
  appointment) goes as usual.
- Never two of the same: a reminder deferred (quiet hours, a bank holiday) to a time at
  or after the next reminder for the same appointment, or to a day one has already gone
  on, is dropped; the other one says the same thing.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session

from assistant.db.driver import Prepared
from assistant.db.models import Appointment, DueTask, FlowSession, Participant, table
from assistant.db.open_items import pending_tasks
from assistant.db.units import one_of

REMINDER_FLOWS = ("appointment_reminder",)


def said_no(appointment: Appointment, task: DueTask) -> bool:
    """They said they can't make it after this reminder was planned."""
    asked = appointment.cancellation_requested_at
    return asked is not None and (task.created_at is None or asked >= task.created_at)


def _same_appointment(task: DueTask, other: DueTask) -> bool:
    return other.id != task.id and other.payload.get("appointment_id") == task.payload.get("appointment_id")


def overtaken(db: Session, task: DueTask, participant: Participant, when: datetime) -> bool:
    """A reminder deferred to `when` would land beside (on the same local day as, or after) the
    next reminder planned for the same appointment."""
    if task.kind != "appt_reminder":
        return False
    zone = ZoneInfo(participant.timezone)
    pending = db.exec(pending_tasks(participant.id, task.kind)).all()
    for other in pending:
        if not _same_appointment(task, other) or other.due_at is None:
            continue
        if other.due_at <= when or other.due_at.astimezone(zone).date() == when.astimezone(zone).date():
            return True
    return False


def already_reminded_today(db: Session, task: DueTask, participant: Participant, now: datetime) -> bool:
    """A reminder for this appointment has already started on this local day."""
    if task.kind != "appt_reminder":
        return False
    zone = ZoneInfo(participant.timezone)
    today = now.astimezone(zone).date()
    sittings = _REMINDER_SITTINGS.run(db, {"participant_id": participant.id}).all()
    return any(
        s.state.get("vars", {}).get("appointment_id") == task.payload.get("appointment_id")
        and s.started_at is not None
        and s.started_at.astimezone(zone).date() == today
        for s in sittings
    )


_sitting = table(FlowSession)
# A person's appointment reminders, what they were about and when they began: asked before each goes.
_REMINDER_SITTINGS = Prepared(
    sa.select(_sitting.c.state, _sitting.c.started_at).where(
        _sitting.c.participant_id == sa.bindparam("participant_id"), one_of(_sitting.c.flow, REMINDER_FLOWS)
    )
)


def not_wanted(
    db: Session, task: DueTask, appointment: Appointment, participant: Participant, now: datetime
) -> str | None:
    """Why this reminder must not go now, as its outcome, or None."""
    if said_no(appointment, task):
        return "withdrawn_said_no"
    if already_reminded_today(db, task, participant, now):
        return "withdrawn_duplicate"
    return None
