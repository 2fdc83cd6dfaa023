"""The clock's due rows for the journey's ends: the welcome text and the sustainment checks."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from assistant import contact_policy
from assistant.models import DueTask, JobStart, Participant
from assistant.runtime import Runtime

WELCOME_KEY = "journey/welcome"


def run_welcome(db: Session, rt: Runtime, task: DueTask, participant: Participant, now: datetime) -> str:
    """One welcome, at the next allowed time; never after support ended or to someone blocked."""
    from assistant import scheduler
    from assistant.conversation import queue_sms
    from assistant.referrals import welcome_vars

    blocked = contact_policy.blocked_by(participant, now)
    if blocked:
        return f"skipped_{blocked}"
    later = contact_policy.wait_until(db, participant, "welcome", now)
    if later is not None:
        return scheduler._defer_to(task, later)
    variables = welcome_vars(db, participant, now)
    queue_sms(db, rt, participant, WELCOME_KEY, now, variables=variables, automated=True)
    return "sent"


def run_sustainment(db: Session, rt: Runtime, task: DueTask, participant: Participant, now: datetime) -> str:
    """Ask "Are you still in work?" for the job start this row belongs to, if it is still the latest."""
    from assistant import scheduler
    from assistant.work import latest_job

    assert participant.id is not None
    job = db.get(JobStart, task.payload.get("job_start_id"))
    latest = latest_job(db, participant.id)
    if job is None or latest is None or latest.id != job.id:
        return "withdrawn_changed"  # a later job start has its own checks
    blocked = contact_policy.blocked_by(participant, now)
    if blocked:
        return f"skipped_{blocked}"
    later = contact_policy.wait_until(db, participant, "sustainment", now)
    if later is not None:
        return scheduler._defer_to(task, later)
    extra = {"weeks": task.payload.get("weeks"), "job_start_id": job.id}
    return scheduler._start(db, rt, task, participant, now, "sustainment", extra=extra)
