"""The clock: due rows in the database, acted on by a few fixed jobs.

`tick(rt, now)` does everything due at `now` once: check-ins, wait timeouts,
stale sends, then the outbox. Running it twice for the same instant does nothing
twice. APScheduler only calls `tick` on an interval; it holds no schedule itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from . import engine, outbox
from .conversation import Outcome, active_session, resume_flow, start_flow
from .db import lock_participant, skip_locked, transaction
from .models import DueTask, FlowSession, Participant
from .runtime import Runtime
from .timing import next_weekly, parse_hhmm, weeks_later

log = logging.getLogger(__name__)

# A check-in more than this late (the scheduler was down) is skipped, not sent at an odd hour.
CHECKIN_GRACE = timedelta(hours=12)
BATCH = 200


@dataclass
class TickReport:
    checkins: int = 0
    skipped: int = 0
    timeouts: int = 0
    reconciled: int = 0
    sends: outbox.SendReport = field(default_factory=outbox.SendReport)


def plan_checkin(
    db: Session, participant: Participant, now: datetime, *, after: datetime | None = None
) -> DueTask | None:
    """Make sure exactly one future check-in is planned, at the participant's day and time."""
    assert participant.id is not None
    pending = db.exec(
        select(DueTask).where(
            DueTask.participant_id == participant.id, DueTask.kind == "checkin", DueTask.status == "pending"
        )
    ).all()
    at = parse_hhmm(participant.checkin_time)
    if after is not None:
        due = weeks_later(after, participant.checkin_every_weeks, at, participant.timezone)
    else:
        due = next_weekly(participant.checkin_day, at, participant.timezone, now)
    keep = None
    for task in pending:
        if task.due_at == due and keep is None:
            keep = task
        else:
            task.status, task.outcome, task.done_at = "cancelled", "replanned", now
            db.add(task)
    if keep is not None:
        return keep
    task = DueTask(participant_id=participant.id, kind="checkin", due_at=due, created_at=now)
    db.add(task)
    db.flush()
    return task


def _run_checkin(rt: Runtime, task_id: int, now: datetime) -> tuple[str, Outcome]:
    with transaction(rt.engine) as db:
        task = db.exec(skip_locked(db, select(DueTask).where(DueTask.id == task_id))).first()
        if task is None or task.status != "pending":
            return "taken", Outcome()
        participant = lock_participant(db, task.participant_id)
        assert participant is not None and task.due_at is not None
        task.status, task.done_at = "done", now
        outcome = Outcome()
        if participant.opted_out:
            task.outcome = "skipped_opted_out"
        elif participant.unreachable:
            task.outcome = "skipped_unreachable"
        elif participant.paused:
            task.outcome = "skipped_paused"
        elif now - task.due_at > CHECKIN_GRACE:
            task.outcome = "skipped_too_late"
        else:
            waiting = active_session(db, task.participant_id)
            if waiting is not None and waiting.flow != "checkin":
                # Never interrupt another flow's question: try again when it has had its wait.
                retry = max(waiting.wait_until or now, now) + timedelta(minutes=1)
                task.status, task.done_at, task.outcome = "pending", None, None
                task.due_at = retry
                db.add(task)
                return "deferred", outcome
            if waiting is not None:  # last check-in still open: it had no reply
                outcome.extend(resume_flow(db, rt, participant, waiting, engine.Timeout(), now))
            flow = rt.flows.get("checkin")
            assert flow is not None
            outcome.extend(start_flow(db, rt, participant, flow, now))
            task.outcome = "sent"
        db.add(task)
        plan_checkin(db, participant, now, after=task.due_at)
        return task.outcome or "", outcome


def _run_timeout(rt: Runtime, session_id: int, now: datetime) -> bool:
    with transaction(rt.engine) as db:
        row = db.exec(skip_locked(db, select(FlowSession).where(FlowSession.id == session_id))).first()
        if row is None:
            return False
        participant = lock_participant(db, row.participant_id)
        db.refresh(row)
        if row.status != "waiting" or row.wait_until is None or row.wait_until > now or participant is None:
            return False  # answered meanwhile: this timeout is stale
        resume_flow(db, rt, participant, row, engine.Timeout(), now)
        return True


def tick(rt: Runtime, now: datetime) -> TickReport:
    report = TickReport()
    with transaction(rt.engine) as db:
        due_checkins = db.exec(
            select(DueTask.id)
            .where(DueTask.kind == "checkin", DueTask.status == "pending", col(DueTask.due_at) <= now)
            .order_by(col(DueTask.due_at))
            .limit(BATCH)
        ).all()
        due_timeouts = db.exec(
            select(FlowSession.id)
            .where(FlowSession.status == "waiting", col(FlowSession.wait_until) <= now)
            .order_by(col(FlowSession.wait_until))
            .limit(BATCH)
        ).all()
    for session_id in due_timeouts:
        assert session_id is not None
        if _run_timeout(rt, session_id, now):
            report.timeouts += 1
    for task_id in due_checkins:
        assert task_id is not None
        result, _ = _run_checkin(rt, task_id, now)
        if result == "sent":
            report.checkins += 1
        elif result.startswith("skipped"):
            report.skipped += 1
    report.reconciled = outbox.reconcile_stale(rt, now)
    report.sends = outbox.send_due(rt, now)
    return report


def start_clock(rt: Runtime) -> object:
    """Run `tick` on an interval in a background thread. One clock per deployment."""
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone="UTC")

    def job() -> None:
        try:
            tick(rt, rt.clock.now())
        except Exception:  # keep the clock running; the rows are still due next time
            log.exception("tick failed")

    scheduler.add_job(
        job,
        "interval",
        seconds=rt.settings.tick_seconds,
        id="tick",
        max_instances=1,
        coalesce=True,
        next_run_time=rt.clock.now(),
    )
    scheduler.start()
    return scheduler
