"""How many weeks apart check-ins are, as the journey goes on.

- While a new referral waits for support to start: the lighter "while you wait" cadence
  (the service's waiting_checkin_every_weeks), unless the participant's own is sparser.
- In the first weeks after a job start: weekly (in_work_weekly_weeks), then the participant's
  own cadence, which the job start set to the service's in-work one (in_work_every_weeks).
- Otherwise the participant's own cadence.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from assistant.contact.journey_state import latest_job, local_today, waiting_to_start
from assistant.db.models import Participant
from assistant.db.service_settings import settings_for


def checkin_weeks(db: Session, participant: Participant, after: datetime) -> int:
    """Weeks from the check-in slot `after` to the next one."""
    day = local_today(participant, after)
    settings = settings_for(db, participant)
    if waiting_to_start(participant, day):
        return max(participant.checkin_every_weeks, settings.waiting_checkin_every_weeks)
    if participant.cohort == "in_work" and participant.id is not None:
        job = latest_job(db, participant.id)
        if job is not None and day < job.started_on + timedelta(weeks=settings.in_work_weekly_weeks):
            return 1
    return participant.checkin_every_weeks


def checkin_flow(participant: Participant, now: datetime) -> str:
    """The waiting check-in is a short note with nothing to answer; afterwards, the weekly question."""
    return "waiting_checkin" if waiting_to_start(participant, local_today(participant, now)) else "checkin"
