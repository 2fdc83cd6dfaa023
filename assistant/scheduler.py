"""The clock: due rows in the database, acted on by a few fixed jobs.

`tick(rt, now)` does everything due at `now` once: wait timeouts, due contacts
(check-ins, reminders, follow-ups), reminders about unacknowledged urgent flags,
stale sends, then the outbox. Running it twice for the same instant does nothing
twice. APScheduler only calls `tick` on an interval; it holds no schedule itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, select

from . import appointments, campaigns, contact_policy, engine, outbox, privacy, rules, signins
from .conversation import (
    PROMPT_VALID_FOR,
    active_session,
    questionnaire_under_way,
    resume_flow,
    start_expiring_flow,
    start_flow,
)
from .db import lock_participant, skip_locked, transaction, unindexed
from .flags import raise_flag
from .models import Appointment, DueTask, FlowSession, Participant, table
from .notify import escalate_due, queue_digests, send_notifications
from .runtime import Runtime
from .service_settings import settings_for
from .timing import next_weekly, parse_hhmm, weeks_later

log = logging.getLogger(__name__)

# A check-in more than this late (the scheduler was down) is skipped, not sent at an odd hour.
CHECKIN_GRACE = timedelta(hours=12)
# A reminder that could only arrive this close to the appointment is withdrawn instead.
REMINDER_MARGIN = timedelta(hours=3)
GOOD_LUCK_MARGIN = timedelta(minutes=30)
# A question just asked gets this long before another scheduled contact may replace it.
ANSWER_TIME = timedelta(minutes=30)
# Flows a scheduled contact may close if they are still waiting (a questionnaire never is).
SUPERSEDABLE = {"checkin", "appointment_reminder", "dna_followup", "interview_good_luck"}
# (a questionnaire is never cut short; it waits for its answers or its expiry)
BATCH = 200
DEFERRED = "deferred"


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
    sends: outbox.SendReport = field(default_factory=outbox.SendReport)

    @property
    def checkins(self) -> int:  # kept for the CLI's summary line
        return self.started


def plan_checkin(db: Session, participant: Participant, now: datetime, *, after: datetime | None = None) -> DueTask:
    """Make sure exactly one future check-in is planned, at the participant's day and time."""
    assert participant.id is not None
    pending = db.exec(
        select(DueTask).where(
            DueTask.participant_id == participant.id,
            DueTask.kind == "checkin",
            unindexed(DueTask.status) == "pending",
        )
    ).all()
    at = parse_hhmm(participant.checkin_time)
    if after is not None:
        due = weeks_later(after, participant.checkin_every_weeks, at, participant.timezone)
    else:
        due = next_weekly(participant.checkin_day, at, participant.timezone, now)
    keep = None
    for task in pending:
        if task.payload.get("slot") == due.isoformat() and keep is None:
            keep = task
        else:
            task.status, task.outcome, task.done_at = "cancelled", "replanned", now
            db.add(task)
    if keep is not None:
        return keep
    task = DueTask(
        participant_id=participant.id, kind="checkin", due_at=due, created_at=now, payload={"slot": due.isoformat()}
    )
    db.add(task)
    db.flush()
    return task


def _make_room(db: Session, rt: Runtime, participant: Participant, now: datetime, flow_id: str) -> datetime | None:
    """Close a routine flow still waiting, or say when to try again if it must not be interrupted.

    The same flow starting again (next week's check-in, the next follow-up) means the
    last one had no reply; another routine flow supersedes it. A question asked only
    moments ago, or a questionnaire under way, is never cut short.
    """
    assert participant.id is not None
    waiting = active_session(db, participant.id)
    if waiting is None:
        return None
    invitation = waiting.flow.startswith("questionnaire_") and not questionnaire_under_way(
        waiting.flow, waiting.question
    )
    if waiting.flow not in SUPERSEDABLE and not invitation:
        return max(waiting.wait_until or now, now) + timedelta(minutes=1)
    if waiting.started_at and now - waiting.started_at < ANSWER_TIME:
        return waiting.started_at + ANSWER_TIME
    # An invitation not taken up ends as expired (recorded as such), like an unanswered question.
    if invitation or waiting.flow == flow_id or (waiting.wait_until and waiting.wait_until <= now):
        resume_flow(db, rt, participant, waiting, engine.Timeout(), now)
    else:
        waiting.status, waiting.ended_at, waiting.end_reason, waiting.wait_until = "ended", now, "superseded", None
        waiting.version += 1
        db.add(waiting)
    return None


def _defer_to(task: DueTask, when: datetime) -> str:
    task.due_at = when
    return DEFERRED


def _start(
    db: Session,
    rt: Runtime,
    task: DueTask,
    participant: Participant,
    now: datetime,
    flow_id: str,
    *,
    extra: dict[str, object] | None = None,
    expires_at: datetime | None = None,
) -> str:
    retry_at = _make_room(db, rt, participant, now, flow_id)
    if retry_at is not None:
        if expires_at is not None and retry_at >= expires_at:
            return "withdrawn_busy"
        return _defer_to(task, retry_at)
    flow = rt.flows.get(flow_id)
    assert flow is not None, f"flow {flow_id} is not loaded"
    start_flow(
        db,
        rt,
        participant,
        flow,
        now,
        extra_vars=extra,
        automated=True,
        expires_at=expires_at or now + PROMPT_VALID_FOR,
    )
    return "sent"


def _tell_once(db: Session, participant: Participant, reason: str, now: datetime, task: DueTask) -> None:
    raise_flag(
        db,
        participant,
        kind="contact_skipped",
        severity="action",
        reason=f"A scheduled text was not sent: {reason.replace('_', ' ')}",
        now=now,
        evidence={"task": task.kind, "appointment_id": task.payload.get("appointment_id")},
    )


def run_checkin(db: Session, rt: Runtime, task: DueTask, participant: Participant, now: datetime) -> str:
    assert task.due_at is not None
    slot = datetime.fromisoformat(task.payload.get("slot", task.due_at.isoformat()))
    blocked = contact_policy.blocked_by(participant)
    if blocked:
        outcome = f"skipped_{blocked}"
    elif now - task.due_at > CHECKIN_GRACE:
        outcome = "skipped_too_late"
    elif (later := contact_policy.wait_until(db, participant, "checkin", now)) is not None:
        return _defer_to(task, later)
    else:
        outcome = _start(db, rt, task, participant, now, "checkin")
        if outcome == DEFERRED:
            return outcome
    plan_checkin(db, participant, now, after=slot)
    return outcome


def _appointment_for(db: Session, task: DueTask) -> Appointment | None:
    return db.get(Appointment, task.payload.get("appointment_id"))


def run_reminder(db: Session, rt: Runtime, task: DueTask, participant: Participant, now: datetime) -> str:
    appointment = _appointment_for(db, task)
    if appointment is None or appointment.starts_at is None:
        return "withdrawn_missing"
    if appointment.version != task.payload.get("appointment_version") or appointment.outcome is not None:
        return "withdrawn_changed"
    margin = GOOD_LUCK_MARGIN if task.kind == "interview_good_luck" else REMINDER_MARGIN
    latest = appointment.starts_at - margin
    if now >= latest:
        return "withdrawn_too_late"
    blocked = contact_policy.blocked_by(participant)
    if blocked:
        _tell_once(db, participant, blocked, now, task)
        return f"skipped_{blocked}"
    later = contact_policy.wait_until(db, participant, task.kind, now)
    if later is not None:
        return _defer_to(task, later) if later < latest else "withdrawn_too_late"
    flow = "interview_good_luck" if task.kind == "interview_good_luck" else "appointment_reminder"
    extra = appointments.appointment_vars(appointment, participant, now)
    return _start(db, rt, task, participant, now, flow, extra=extra, expires_at=latest)


def run_dna_attempt(db: Session, rt: Runtime, task: DueTask, participant: Participant, now: datetime) -> str:
    appointment = _appointment_for(db, task)
    if appointment is None or appointment.outcome != "dna":
        return "withdrawn_changed"
    assert participant.id is not None
    if appointments.replied_since(db, participant.id, datetime.fromisoformat(task.payload["marked_at"])):
        return "ended_replied"
    blocked = contact_policy.blocked_by(participant)
    if blocked:
        _tell_once(db, participant, blocked, now, task)
        return f"skipped_{blocked}"  # the ladder stops: a person decides what next
    later = contact_policy.wait_until(db, participant, task.kind, now)
    if later is not None:
        return _defer_to(task, later)
    outcome = _start(db, rt, task, participant, now, "dna_followup", extra={"attempt": task.payload["attempt"]})
    if outcome != DEFERRED:
        appointments.plan_next_rung(db, task, participant, now)
    return outcome


def run_dna_unanswered(db: Session, rt: Runtime, task: DueTask, participant: Participant, now: datetime) -> str:
    assert participant.id is not None
    if appointments.replied_since(db, participant.id, datetime.fromisoformat(task.payload["marked_at"])):
        return "ended_replied"
    attempts = appointments.ladder_attempts(db, participant.id, task.payload["appointment_id"])
    raise_flag(
        db,
        participant,
        kind="unable_to_contact",
        severity="action",
        reason=f"No reply to {task.payload.get('attempts')} follow-ups after a missed appointment",
        now=now,
        evidence={"appointment_id": task.payload["appointment_id"], "attempts": attempts},
    )
    return "flagged"


def run_questionnaire(db: Session, rt: Runtime, task: DueTask, participant: Participant, now: datetime) -> str:
    """Ask the service's questionnaires: never two at once, never during another flow's question."""
    from .measures import plan_questionnaires

    blocked = contact_policy.blocked_by(participant)
    reason = task.payload.get("reason", "every")
    if blocked:
        outcome = f"skipped_{blocked}"
    elif (later := contact_policy.wait_until(db, participant, "questionnaire", now)) is not None:
        return _defer_to(task, later)
    else:
        settings = settings_for(db, participant)
        flow = rt.flows.questionnaire(list(task.payload.get("instruments") or settings.questionnaire_instruments))
        assert participant.id is not None
        waiting = active_session(db, participant.id)
        if waiting is not None:  # never during another flow's question, never two at once
            return _defer_to(task, max(waiting.wait_until or now, now) + timedelta(minutes=1))
        expires_after = timedelta(hours=settings.questionnaire_expires_hours)
        start_expiring_flow(db, rt, participant, flow, now, expires_after=expires_after)
        outcome = "sent"
    if reason in ("start", "every") and task.due_at is not None:
        plan_questionnaires(db, participant, now, after=task.due_at, reason="every")
    return outcome


Handler = Callable[[Session, Runtime, DueTask, Participant, datetime], str]
HANDLERS: dict[str, Handler] = {
    "checkin": run_checkin,
    "appt_reminder": run_reminder,
    "interview_good_luck": run_reminder,
    "dna_attempt": run_dna_attempt,
    "dna_unanswered": run_dna_unanswered,
    "questionnaire": run_questionnaire,
}


_TASK = select(DueTask).where(DueTask.id == sa.bindparam("id"))
_SESSION = select(FlowSession).where(FlowSession.id == sa.bindparam("id"))


def run_task(rt: Runtime, task_id: int, now: datetime) -> str:
    """Claim one due row and act on it, in one transaction under the participant's lock."""
    with transaction(rt.engine) as db:
        task = db.exec(skip_locked(db, _TASK), params={"id": task_id}).first()
        if task is None or task.status != "pending" or task.due_at is None or task.due_at > now:
            return "taken"
        participant = lock_participant(db, task.participant_id)
        assert participant is not None
        outcome = HANDLERS[task.kind](db, rt, task, participant, now)
        if outcome != DEFERRED:
            task.status, task.outcome, task.done_at = "done", outcome, now
        db.add(task)
        return outcome


def _run_timeout(rt: Runtime, session_id: int, now: datetime) -> bool:
    with transaction(rt.engine) as db:
        row = db.exec(skip_locked(db, _SESSION), params={"id": session_id}).first()
        if row is None:
            return False
        participant = lock_participant(db, row.participant_id)
        db.refresh(row)
        if row.status != "waiting" or row.wait_until is None or row.wait_until > now or participant is None:
            return False  # answered meanwhile: this timeout is stale
        resume_flow(db, rt, participant, row, engine.Timeout(), now)
        return True


_session, _task = table(FlowSession), table(DueTask)
# Built once: every tick asks these, and most ticks find little.
_DUE_TIMEOUTS = (
    sa.select(_session.c.id)
    .where(
        _session.c.status == "waiting", _session.c.wait_until <= sa.bindparam("now", type_=_session.c.wait_until.type)
    )
    .order_by(_session.c.wait_until)
    .limit(BATCH)
)
_DUE_TIMEOUTS_FOR = _DUE_TIMEOUTS.where(_session.c.participant_id == sa.bindparam("participant_id"))
_DUE_TASKS = (
    sa.select(_task.c.id)
    .where(_task.c.status == "pending", _task.c.due_at <= sa.bindparam("now", type_=_task.c.due_at.type))
    .order_by(_task.c.due_at, _task.c.id)
    .limit(BATCH)
)
_DUE_TASKS_FOR = _DUE_TASKS.where(_task.c.participant_id == sa.bindparam("participant_id"))


def tick(rt: Runtime, now: datetime, *, participant_id: int | None = None) -> TickReport:
    """Everything due at `now`; with `participant_id`, only that participant's (the simulator)."""
    report = TickReport()
    with transaction(rt.engine) as db:
        params: dict[str, Any] = {"now": now, "participant_id": participant_id}
        if participant_id is None:
            due_timeouts = db.execute(_DUE_TIMEOUTS, {"now": now}).scalars().all()
        else:
            due_timeouts = db.execute(_DUE_TIMEOUTS_FOR, params).scalars().all()
    for session_id in due_timeouts:
        assert session_id is not None
        if _run_timeout(rt, session_id, now):
            report.timeouts += 1
    done: set[int] = set()
    query, params = (_DUE_TASKS, {"now": now}) if participant_id is None else (_DUE_TASKS_FOR, params)
    while True:  # a deferral can make a task due again at the same instant: run each once
        with transaction(rt.engine) as db:
            due_tasks = [i for i in db.execute(query, params).scalars() if i is not None and i not in done]
        if not due_tasks:
            break
        for task_id in due_tasks:
            done.add(task_id)
            result = run_task(rt, task_id, now)
            if result == "sent":
                report.started += 1
            elif result == DEFERRED:
                report.deferred += 1
            elif result != "taken":
                report.skipped += 1
    if participant_id is not None:
        report.sends = outbox.send_due(rt, now, participant_id=participant_id)
        return report
    # Before the sends below, so each reminder's emails and duty text leave in this same tick.
    report.escalated = escalate_due(rt, now)
    with transaction(rt.engine) as db:
        report.flagged = rules.silence_sweep(db, now)
        queue_digests(db, now, rt.settings.default_timezone)
    report.campaign = campaigns.run_due(rt, now)
    if now.astimezone(ZoneInfo(rt.settings.default_timezone)).hour == 3:  # once a night is enough
        with transaction(rt.engine) as db:
            for participant in privacy.due_for_retention(db, now.date()):
                privacy.erase(db, participant, now)
            signins.forget_old(db, now)
            signins.forget_failures(db, now)
    report.reconciled = outbox.reconcile_stale(rt, now)
    report.sends = outbox.send_due(rt, now)
    report.emails = send_notifications(rt, now)
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
