"""Planning a participant's weekly check-ins: exactly one future check-in at their day and time,
at the cadence their journey calls for."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from assistant.contact.cadence import checkin_weeks
from assistant.contact.journey_state import support_ended
from assistant.db.driver import Prepared
from assistant.db.models import DueTask, Participant, TaskStatus, table
from assistant.db.rows import expire_loaded
from assistant.timing import next_weekly, parse_hhmm, weeks_later

_tasks = table(DueTask)
# Built once, run on the driver: asked for every check-in started and every reply that ends one.
_PENDING_CHECKINS = Prepared(
    sa.select(_tasks.c.id, _tasks.c.payload).where(
        _tasks.c.participant_id == sa.bindparam("participant_id"),
        _tasks.c.kind == "checkin",
        _tasks.c.status == TaskStatus.PENDING,
    )
)
_CANCEL = Prepared(
    _tasks.update()
    .where(_tasks.c.id == sa.bindparam("task_id"))
    .values(
        status=TaskStatus.CANCELLED,
        outcome="replanned",
        done_at=sa.bindparam("now", type_=_tasks.c.done_at.type),
    )
)
# One INSERT, not an object added and flushed: every check-in started plans the next.
_INSERT_TASK = Prepared(
    _tasks.insert().values(
        kind="checkin",
        status=TaskStatus.PENDING,
        attempts=0,
        participant_id=sa.bindparam("participant_id"),
        due_at=sa.bindparam("due_at", type_=_tasks.c.due_at.type),
        created_at=sa.bindparam("created_at", type_=_tasks.c.created_at.type),
        payload=sa.bindparam("payload", type_=_tasks.c.payload.type),
    )
)


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
    pending = _PENDING_CHECKINS.run(db, {"participant_id": participant.id}).all()
    at = parse_hhmm(participant.checkin_time)
    if after is not None:
        due = weeks_later(after, checkin_weeks(db, participant, after), at, participant.timezone)
    else:
        due = next_weekly(participant.checkin_day, at, participant.timezone, now)
    keep = None
    ended = support_ended(participant, now)
    for task_id, payload in pending:
        if running is not None and task_id == running.id:
            continue
        if payload.get("slot") == due.isoformat() and keep is None and not ended:
            keep = task_id
        else:
            _CANCEL.run(db, {"task_id": task_id, "now": now})
            expire_loaded(db, DueTask, task_id)
    if keep is None and not ended:
        slot = {"slot": due.isoformat()}
        _INSERT_TASK.run(db, {"participant_id": participant.id, "due_at": due, "created_at": now, "payload": slot})
    return due
