"""Work: job starts the specialist records, in-work contact, and sustainment checks by text.

Recording a job start moves the participant to in-work contact: texts out of working hours
(the service's in-work window), weekly for the first weeks, then less often (cadence.py).
At 13 and 26 weeks (settings) a text asks "Are you still in work?"; the answer is kept on
the job start, and an answer that is not clear goes to the specialist as a flag.
Job starts of 7 or more hours a week count as job outcomes.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlmodel import Session, select

from assistant.contact.checkins import plan_checkin
from assistant.contact.journey_state import local_today, support_ended
from assistant.db.models import DueTask, FlowSession, JobStart, Participant
from assistant.db.service_settings import settings_for
from assistant.engine import RecordAnswer
from assistant.runtime import Runtime
from assistant.timing import local_at, parse_hhmm

OUTCOME_HOURS = 7.0
SUSTAINMENT_FLOW = "sustainment"
SUSTAINMENT_QUESTION = "still_in_work"
# Broad sectors, pre-coded (no free text to clean up later).
SECTORS = {
    "retail": "Retail and shops",
    "hospitality": "Hospitality, food and drink",
    "care": "Health and social care",
    "office": "Office and administration",
    "construction": "Construction and trades",
    "manufacturing": "Manufacturing and warehouse",
    "transport": "Transport and delivery",
    "education": "Education",
    "cleaning": "Cleaning and facilities",
    "creative": "Creative and media",
    "digital": "IT and digital",
    "public": "Public sector",
    "self_employed": "Self-employed",
    "other": "Other",
}


class JobStartError(ValueError):
    pass


def counts_as_outcome(job: JobStart) -> bool:
    return job.hours_per_week >= OUTCOME_HOURS


# A job start is recorded when it is offered or happens, or caught up on later: not years after.
JOB_START_AHEAD = timedelta(days=60)
JOB_START_BACK = timedelta(days=730)


def check_job(started_on: date, hours: float, employer: str, sector: str, *, today: date) -> None:
    if started_on > today + JOB_START_AHEAD:
        raise JobStartError(f"start date: at most {JOB_START_AHEAD.days} days ahead")
    if started_on < today - JOB_START_BACK:
        raise JobStartError("start date: at most two years ago")
    if not 0 < hours <= 80:
        raise JobStartError("hours a week: more than 0 and at most 80")
    if len(employer) > 200 or not employer.isprintable():
        raise JobStartError("employer: at most 200 characters on one line")
    if sector not in SECTORS:
        raise JobStartError(f"sector: one of {', '.join(SECTORS)}")


def record_job_start(
    db: Session,
    participant: Participant,
    *,
    started_on: date,
    hours: float,
    employer: str,
    sector: str,
    by: str,
    now: datetime,
) -> JobStart:
    """Record a job start and move the participant to in-work contact. The caller owns the transaction."""

    assert participant.id is not None
    check_job(started_on, hours, employer.strip(), sector, today=local_today(participant, now))
    if any(
        (j.started_on, j.hours_per_week, j.employer.lower()) == (started_on, hours, employer.strip().lower())
        for j in db.exec(select(JobStart).where(JobStart.participant_id == participant.id)).all()
    ):
        raise JobStartError("this job start is recorded already (the same day, hours and employer)")
    job = JobStart(
        participant_id=participant.id,
        started_on=started_on,
        hours_per_week=hours,
        employer=employer.strip(),
        sector=sector,
        recorded_by=by,
        recorded_at=now,
    )
    db.add(job)
    settings = settings_for(db, participant)
    participant.cohort = "in_work"
    participant.checkin_time = settings.in_work_checkin_time
    participant.allowed_from, participant.allowed_until = settings.in_work_allowed_from, settings.in_work_allowed_until
    participant.checkin_every_weeks = settings.in_work_every_weeks
    if participant.support_started_on is None:
        participant.support_started_on = min(started_on, local_today(participant, now))
    participant.updated_at = now
    db.add(participant)
    db.flush()
    plan_checkin(db, participant, now)
    plan_sustainment(db, participant, job, now)
    return job


def plan_sustainment(db: Session, participant: Participant, job: JobStart, now: datetime) -> list[DueTask]:
    """One due row per sustainment check still ahead, at the in-work check-in time on that day;
    none after support has ended (a job recorded after an exit counts in the reports, and nobody
    is texted about it)."""
    assert participant.id is not None and job.id is not None
    if support_ended(participant, now):
        return []
    settings = settings_for(db, participant)
    at = parse_hhmm(settings.in_work_checkin_time)
    planned = []
    for weeks in settings.sustainment_weeks:
        due = local_at(job.started_on + timedelta(weeks=weeks), at, participant.timezone)
        if due <= now:
            continue
        task = DueTask(
            participant_id=participant.id,
            kind="sustainment",
            due_at=due,
            created_at=now,
            payload={"job_start_id": job.id, "weeks": weeks},
        )
        db.add(task)
        planned.append(task)
    db.flush()
    return planned


def sustainment_answered(
    db: Session, rt: Runtime, participant: Participant, row: FlowSession, answer: RecordAnswer, now: datetime
) -> None:
    """The sustainment flow's `on_answer` effect."""
    record_sustainment(db, row, answer.question, answer.value)


def record_sustainment(db: Session, row: FlowSession, question: str, value: str) -> None:
    """The answer to a sustainment check, kept on its job start (the Answer row keeps the words)."""
    if row.flow != SUSTAINMENT_FLOW or question != SUSTAINMENT_QUESTION:
        return
    variables = row.state.get("vars", {})
    job = db.get(JobStart, variables.get("job_start_id"))
    if job is None:
        return
    job.sustainment = dict(job.sustainment) | {str(variables.get("weeks")): value}
    db.add(job)
