"""Planning a participant's weekly check-ins: exactly one future check-in at their day and time,
at the cadence their journey calls for."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from assistant.contact.cadence import checkin_weeks
from assistant.contact.journey_state import support_ended
from assistant.db.models import DueTask, Participant, TaskStatus, table
from assistant.timing import next_weekly, parse_hhmm, weeks_later

# Built once: asked for every check-in started and every reply that ends one.
_PENDING_CHECKINS = select(DueTask).where(
    DueTask.participant_id == sa.bindparam("participant_id"),
    DueTask.kind == "checkin",
    DueTask.status == TaskStatus.PENDING,
)
# One INSERT, not an object added and flushed: every check-in started plans the next.
_INSERT_TASK = table(DueTask).insert().values(kind="checkin", status=TaskStatus.PENDING, attempts=0)


def plan_checkin(
    db: Session,
    participant: Participant,
    now: datetime,
    *,
    after: datetime | None = None,
    running: DueTask | None = None,
) -> datetime:
    """Make sure exactly one future check-in is planned, at the participant's day and time, and
    say when it is. `running` is the check-in being run now: its runner closes it, so it is left
    as it is. After support has ended none is planned (any pending is cancelled), whatever changes
    on the record later (a job start, a referral date, a resumed pause): the time is still said."""
    assert participant.id is not None
    pending = db.exec(_PENDING_CHECKINS, params={"participant_id": participant.id}).all()
    at = parse_hhmm(participant.checkin_time)
    if after is not None:
        due = weeks_later(after, checkin_weeks(db, participant, after), at, participant.timezone)
    else:
        due = next_weekly(participant.checkin_day, at, participant.timezone, now)
    keep = None
    ended = support_ended(participant, now)
    for task in pending:
        if task is running:
            continue
        if task.payload.get("slot") == due.isoformat() and keep is None and not ended:
            keep = task
        else:
            task.status, task.outcome, task.done_at = TaskStatus.CANCELLED, "replanned", now
            db.add(task)
    if keep is None and not ended:
        slot = {"slot": due.isoformat()}
        db.execute(_INSERT_TASK, {"participant_id": participant.id, "due_at": due, "created_at": now, "payload": slot})
    return due
