"""Where a participant is on their journey, read from the record: waiting to start, in work,
or past the end of support. Reads only, so the modules that change the journey can all use them.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session

from assistant.db.driver import Prepared
from assistant.db.models import JobStart, Participant, table
from assistant.db.rows import first_row


def local_today(participant: Participant, now: datetime) -> date:
    return now.astimezone(ZoneInfo(participant.timezone)).date()


def waiting_to_start(participant: Participant, on: date) -> bool:
    """Referred, and support has not started yet (nor ended)."""
    if participant.referral_date is None or participant.exit_reason is not None:
        return False
    return participant.support_started_on is None or participant.support_started_on > on


_job = table(JobStart)
# Asked of every check-in: built once.
_LATEST_JOB = Prepared(
    sa.select(_job)
    .where(_job.c.participant_id == sa.bindparam("participant_id"))
    .order_by(_job.c.started_on.desc(), _job.c.id.desc())
    .limit(1)
)


def latest_job(db: Session, participant_id: int) -> JobStart | None:
    return first_row(db, JobStart, _LATEST_JOB, {"participant_id": participant_id})


def support_ended(participant: Participant, now: datetime) -> bool:
    """Whether automated contact must stop: after a planned end date; on and after a recorded exit."""
    ends = participant.support_ends_on
    if ends is None:
        return False
    today = local_today(participant, now)
    return today >= ends if participant.exit_reason is not None else today > ends
