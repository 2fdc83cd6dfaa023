"""The clock: due rows in the database, acted on by a few independent jobs.

`tick(rt, now)` runs each job once for `now`: wait timeouts, due contacts (check-ins, reminders,
follow-ups, questionnaires), reminders about unacknowledged urgent flags, the silence sweep and
digests, campaigns, the nightly work, stale sends, the outbox and email. Running it twice for the
same instant does nothing twice. Each due row is handled in its own unit of work: a row that fails
keeps its error, is tried again later with backoff, and never stops the other rows; a job that
fails never stops the other jobs. APScheduler only calls `tick` on an interval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from assistant import engine
from assistant.care import privacy, rhythm, rules, signins
from assistant.care.digests import queue_digests
from assistant.care.flags import raise_flag
from assistant.care.mail import send_notifications
from assistant.care.notify import escalate_due
from assistant.contact import campaigns
from assistant.contact.due import DEFERRED, HANDLERS
from assistant.db.driver import Prepared
from assistant.db.models import DueTask, FlowSession, JobHealth, SessionStatus, TaskStatus, table
from assistant.db.rows import claim, write_now
from assistant.db.units import INSERT_OR, one_of, participant_unit, shared_connection, transaction
from assistant.runtime import Runtime
from assistant.sending import sender as outbox
from assistant.sending.reconcile import reconcile_stale
from assistant.sessions.lifecycle import resume_flow

log = logging.getLogger(__name__)

BATCH = 200
# A due row that keeps failing is given up after this many tries, and a person is told.
MAX_ROW_ATTEMPTS = 5
FIRST_RETRY = timedelta(minutes=5)


@dataclass
class TickReport:
    started: int = 0
    skipped: int = 0
    deferred: int = 0
    timeouts: int = 0
    escalated: int = 0
    reconciled: int = 0
    emails: int = 0
    flagged: int = 0
    campaign: int = 0
    failed_rows: int = 0
    failed_jobs: dict[str, str] = field(default_factory=dict)
    sends: outbox.SendReport = field(default_factory=outbox.SendReport)

    @property
    def checkins(self) -> int:  # kept for the CLI's summary line
        return self.started


def retry_after(attempts: int) -> timedelta:
    """5, 10, 20, 40 minutes...: a row that failed is tried again, less and less often."""
    return FIRST_RETRY * int(2 ** max(0, attempts - 1))


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:500]


def run_task(rt: Runtime, task_id: int, participant_id: int, now: datetime) -> str:
    """Claim one due row and act on it, in one unit of work under the participant's lock."""
    with participant_unit(rt.engine, participant_id) as (db, participant):
        task = claim(db, DueTask, task_id)
        if task is None or task.participant_id != participant_id or task.status != TaskStatus.PENDING:
            return "taken"
        if task.due_at is None or task.due_at > now:
            return "taken"
        assert participant is not None
        outcome = HANDLERS[task.kind](db, rt, task, participant, now)
        if outcome != DEFERRED:  # (a deferral's new time is written by the commit's flush)
            write_now(db, task, status=TaskStatus.DONE, outcome=outcome, done_at=now)
        return outcome


def task_failed(rt: Runtime, task_id: int, participant_id: int, error: BaseException, now: datetime) -> None:
    """Keep the error on the row and try it later; after the last try, tell the specialist."""
    with participant_unit(rt.engine, participant_id) as (db, participant):
        task = db.get(DueTask, task_id)
        if task is None or task.status != TaskStatus.PENDING:
            return
        task.attempts += 1
        task.last_error = describe(error)
        if task.attempts < MAX_ROW_ATTEMPTS:
            task.due_at = now + retry_after(task.attempts)
        else:
            task.status, task.outcome, task.done_at = TaskStatus.FAILED, "error", now
            if participant is not None:
                raise_flag(
                    db,
                    participant,
                    kind="contact_failed",
                    severity="info",
                    reason="A scheduled contact could not be made: please check on them",
                    now=now,
                    evidence={"task_id": task.id, "kind": task.kind, "error": task.last_error},
                )
        db.add(task)


def run_timeout(rt: Runtime, session_id: int, participant_id: int, now: datetime) -> bool:
    with participant_unit(rt.engine, participant_id) as (db, participant):
        row = claim(db, FlowSession, session_id)
        if row is None or row.participant_id != participant_id:
            return False
        if row.status not in WAITING or row.wait_until is None or row.wait_until > now or participant is None:
            return False  # answered meanwhile: this timeout is stale
        resume_flow(db, rt, participant, row, engine.Timeout(), now)
        return True


def timeout_failed(rt: Runtime, session_id: int, error: BaseException, now: datetime) -> None:
    """The wait stays open (an answer can still come) and its timeout is tried again later."""
    with transaction(rt.engine) as db:
        row = db.get(FlowSession, session_id)
        if row is None or row.status not in WAITING:
            return
        row.timeout_attempts += 1
        row.last_error = describe(error)
        row.wait_until = now + retry_after(row.timeout_attempts)
        db.add(row)


_session, _task = table(FlowSession), table(DueTask)
# Runs that time out: waiting for a text, or for an answer on a questionnaire's private page.
WAITING = (SessionStatus.WAITING, SessionStatus.ON_PAGE)
# Built once: every tick asks these, and most ticks find little.
_DUE_TIMEOUTS = (
    sa.select(_session.c.id, _session.c.participant_id)
    .where(
        one_of(_session.c.status, WAITING),
        _session.c.wait_until <= sa.bindparam("now", type_=_session.c.wait_until.type),
    )
    .order_by(_session.c.wait_until)
    .limit(BATCH)
)
_DUE_TASKS = (
    sa.select(_task.c.id, _task.c.participant_id)
    .where(_task.c.status == TaskStatus.PENDING, _task.c.due_at <= sa.bindparam("now", type_=_task.c.due_at.type))
    .order_by(_task.c.due_at, _task.c.id)
    .limit(BATCH)
)
# Of all participants (the clock), or of one (the simulator).
_TIMEOUTS_DUE = {
    False: Prepared(_DUE_TIMEOUTS),
    True: Prepared(_DUE_TIMEOUTS.where(_session.c.participant_id == sa.bindparam("participant_id"))),
}
_TASKS_DUE = {
    False: Prepared(_DUE_TASKS),
    True: Prepared(_DUE_TASKS.where(_task.c.participant_id == sa.bindparam("participant_id"))),
}


def timeouts_job(rt: Runtime, now: datetime, report: TickReport, participant_id: int | None) -> None:
    params: dict[str, object] = {"now": now}
    if participant_id is not None:
        params["participant_id"] = participant_id
    # Read outside any unit of work (no writer's turn): each row is claimed and checked again in its own.
    due = _TIMEOUTS_DUE[participant_id is not None].read(rt.engine, params).all()
    for session_id, owner in due:
        try:
            if run_timeout(rt, session_id, owner, now):
                report.timeouts += 1
        except Exception as error:
            log.exception("timeout of session %s failed", session_id)
            report.failed_rows += 1
            timeout_failed(rt, session_id, error, now)


def tasks_job(rt: Runtime, now: datetime, report: TickReport, participant_id: int | None) -> None:
    params: dict[str, object] = {"now": now}
    if participant_id is not None:
        params["participant_id"] = participant_id
    query = _TASKS_DUE[participant_id is not None]
    done: set[int] = set()
    while True:  # a deferral can make a task due again at the same instant: run each once
        # Read outside any unit of work (no writer's turn): run_task claims each and checks it again.
        due = [(i, owner) for i, owner in query.read(rt.engine, params).all() if i not in done]
        if not due:
            return
        for task_id, owner in due:
            done.add(task_id)
            try:
                result = run_task(rt, task_id, owner, now)
            except Exception as error:
                log.exception("due task %s failed", task_id)
                report.failed_rows += 1
                task_failed(rt, task_id, owner, error, now)
                continue
            if result == "sent":
                report.started += 1
            elif result == DEFERRED:
                report.deferred += 1
            elif result != "taken":
                report.skipped += 1


def escalation_job(rt: Runtime, now: datetime, report: TickReport, participant_id: int | None) -> None:
    # Before the sends below, so each reminder's emails and duty text leave in this same tick.
    report.escalated = escalate_due(rt, now)


def sweep_job(rt: Runtime, now: datetime, report: TickReport, participant_id: int | None) -> None:
    # Each person the rhythm acts on gets their own unit of work; then the days rule, the ceiling.
    report.flagged = rhythm.rhythm_sweep(rt.engine, now, participant_id=participant_id)
    if participant_id is not None:
        return  # the simulator moves one person on: the service-wide sweep and digests wait for the clock
    with transaction(rt.engine) as db:
        report.flagged += rules.silence_sweep(db, now)
        queue_digests(db, now, rt.settings.default_timezone)


def campaigns_job(rt: Runtime, now: datetime, report: TickReport, participant_id: int | None) -> None:
    report.campaign = campaigns.run_due(rt, now)


def nightly_job(rt: Runtime, now: datetime, report: TickReport, participant_id: int | None) -> None:
    if now.astimezone(ZoneInfo(rt.settings.default_timezone)).hour != 3:  # once a night is enough
        return
    with transaction(rt.engine) as db:
        for participant in privacy.due_for_retention(db, now.date()):
            privacy.erase(db, participant, now)
        signins.forget_old(db, now)
        signins.forget_failures(db, now)


def reconcile_job(rt: Runtime, now: datetime, report: TickReport, participant_id: int | None) -> None:
    reconciled, failed = reconcile_stale(rt, now)
    report.reconciled += reconciled
    report.failed_rows += failed


def sending_job(rt: Runtime, now: datetime, report: TickReport, participant_id: int | None) -> None:
    report.sends = outbox.send_due(rt, now, participant_id=participant_id)


def email_job(rt: Runtime, now: datetime, report: TickReport, participant_id: int | None) -> None:
    report.emails = send_notifications(rt, now)


Job = Callable[[Runtime, datetime, TickReport, "int | None"], None]
# In this order: each job's work is ready for the ones after it (escalation before sending).
JOBS: list[tuple[str, Job]] = [
    ("timeouts", timeouts_job),
    ("tasks", tasks_job),
    ("escalation", escalation_job),
    ("sweep", sweep_job),
    ("campaigns", campaigns_job),
    ("nightly", nightly_job),
    ("reconcile", reconcile_job),
    ("sending", sending_job),
    ("email", email_job),
]
# The simulator advances one participant: only the jobs that can be limited to them.
PARTICIPANT_JOBS = {"timeouts", "tasks", "sweep", "sending"}


def tick(rt: Runtime, now: datetime, *, participant_id: int | None = None) -> TickReport:
    """Everything due at `now`; with `participant_id`, only that participant's (the simulator)."""
    with shared_connection(rt.engine):  # the tick's units of work take one connection in turn
        return _run_jobs(rt, now, participant_id)


def _run_jobs(rt: Runtime, now: datetime, participant_id: int | None) -> TickReport:
    report = TickReport()
    failed_rows: dict[str, int] = {}
    for name, job in JOBS:
        if participant_id is not None and name not in PARTICIPANT_JOBS:
            continue
        before = report.failed_rows
        try:
            job(rt, now, report, participant_id)
        except sa.exc.OperationalError as error:
            # The database itself is down or locked, not one row or job: the jobs after this one
            # would wait and fail the same way, so the tick ends here and the next one tries again.
            log.warning("the %s job could not reach the database; the rest of this tick waits: %s", name, error)
            report.failed_jobs[name] = describe(error)
            return report
        except Exception as error:
            log.exception("the %s job failed", name)
            report.failed_jobs[name] = describe(error)
        failed_rows[name] = report.failed_rows - before
    if participant_id is None:
        _record_health(rt, now, report.failed_jobs, failed_rows)
    return report


_health = table(JobHealth)


def _health_upsert(dialect: str, rows: list[dict[str, Any]], changed: tuple[str, ...]) -> Prepared:
    """Write these rows' `changed` columns, making each row at its job's first run."""
    insert = INSERT_OR[dialect](_health).values(rows)
    kept = {name: insert.excluded[name] for name in changed}
    return Prepared(insert.on_conflict_do_update(index_elements=["name"], set_=kept))


def _one_job(columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """One job's row: its name and these columns given as parameters of the same names."""
    return [
        {"name": sa.bindparam("name"), **{name: sa.bindparam(name, type_=_health.c[name].type) for name in columns}}
    ]


def _every_job_well() -> list[dict[str, Any]]:
    """Every job's row, for a tick in which each job ran and none failed (nearly every tick)."""
    moment = sa.bindparam("now", type_=_health.c.last_run_at.type)
    return [
        {"name": name, "last_run_at": moment, "last_ok_at": moment, "failed_rows": sa.bindparam(f"failed_{name}")}
        for name, _job in JOBS
    ]


# A failed job keeps its last success, and a job that went well keeps its last error: only these change.
_OK_COLUMNS = ("last_run_at", "failed_rows", "last_ok_at")
_ERROR_COLUMNS = ("last_run_at", "failed_rows", "last_error_at", "last_error")
# Built once per database: every tick writes them.
_HEALTH_OK = {dialect: _health_upsert(dialect, _one_job(_OK_COLUMNS), _OK_COLUMNS) for dialect in INSERT_OR}
_HEALTH_FAILED = {dialect: _health_upsert(dialect, _one_job(_ERROR_COLUMNS), _ERROR_COLUMNS) for dialect in INSERT_OR}
_HEALTH_ALL_RAN = {dialect: _health_upsert(dialect, _every_job_well(), _OK_COLUMNS) for dialect in INSERT_OR}


def _record_health(rt: Runtime, now: datetime, failed_jobs: dict[str, str], failed_rows: dict[str, int]) -> None:
    """How each job went, for the health panel: one transaction per tick."""
    dialect = rt.engine.dialect.name
    try:
        with transaction(rt.engine) as db:
            if not failed_jobs and failed_rows.keys() == {name for name, _job in JOBS}:
                counts = {f"failed_{name}": count for name, count in failed_rows.items()}
                _HEALTH_ALL_RAN[dialect].run(db, {"now": now, **counts})
                return
            for name, failed in failed_rows.items():
                ran = {"name": name, "last_run_at": now, "failed_rows": failed}
                if name in failed_jobs:
                    _HEALTH_FAILED[dialect].run(db, ran | {"last_error_at": now, "last_error": failed_jobs[name]})
                else:
                    _HEALTH_OK[dialect].run(db, ran | {"last_ok_at": now})
    except Exception:  # the database itself is down: the jobs' own failures are already logged
        log.warning("could not record how the clock's jobs went")


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
