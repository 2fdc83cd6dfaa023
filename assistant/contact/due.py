"""Scheduled contacts: planning a participant's check-ins and acting on one due row of each kind
(check-in, reminder, missed-appointment follow-up, questionnaire) under the contact policy.

`HANDLERS` maps a due row's kind to what starts it; `assistant.jobs.tick` claims the rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session

from assistant import engine
from assistant.care.flags import raise_flag
from assistant.care.rhythm import note_ask, rhythm_of
from assistant.contact import appointments, dna_ladder, reminder_rules
from assistant.contact import policy as contact_policy
from assistant.contact.cadence import checkin_flow
from assistant.contact.checkins import plan_checkin
from assistant.contact.journey_state import latest_job
from assistant.contact.pause import run_pause_end
from assistant.contact.questionnaire_links import on_page, send_link
from assistant.db.models import Appointment, DueTask, JobStart, Participant
from assistant.db.rows import get_row
from assistant.db.service_settings import settings_for
from assistant.outbox.writer import PROMPT_VALID_FOR, queue_sms
from assistant.runtime import Runtime
from assistant.sessions.lifecycle import (
    active_session,
    end_session,
    questionnaire_under_way,
    resume_flow,
    start_expiring_flow,
    start_flow,
)

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
        end_session(db, waiting, "superseded", now)
        waiting.version += 1
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
    blocked = contact_policy.blocked_by(participant, now)
    if blocked:
        outcome = f"skipped_{blocked}"
    elif now - task.due_at > CHECKIN_GRACE:
        outcome = "skipped_too_late"
    elif (later := contact_policy.wait_until(db, participant, "checkin", now)) is not None:
        return _defer_to(task, later)
    else:
        outcome = _start(db, rt, task, participant, now, checkin_flow(participant, now))
        if outcome == DEFERRED:
            return outcome
        note_ask(db, participant, now)
    plan_checkin(db, participant, now, after=slot, running=task)
    return outcome


def _appointment_for(db: Session, task: DueTask) -> Appointment | None:
    return get_row(db, Appointment, task.payload.get("appointment_id"))


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
    if (why := reminder_rules.not_wanted(db, task, appointment, participant, now)) is not None:
        return why
    blocked = contact_policy.blocked_by(participant, now)
    if blocked:
        _tell_once(db, participant, blocked, now, task)
        return f"skipped_{blocked}"
    later = contact_policy.wait_until(db, participant, task.kind, now)
    if later is not None:
        if reminder_rules.overtaken(db, task, participant, later):
            return "withdrawn_overtaken"  # the next reminder says the same: never two
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
    if task.payload.get("channel", "sms") != "sms":
        return dna_ladder.open_task(db, task, participant, now)  # a call, email or letter for the specialist
    first = int(task.payload.get("step", 0)) == 0
    blocked = contact_policy.blocked_by(participant, now)
    if blocked:
        _tell_once(db, participant, blocked, now, task)
        if first:
            dna_ladder.first_contact_task(db, participant, task, now, f"texts are off ({blocked.replace('_', ' ')})")
        dna_ladder.plan_next(db, task, participant, now)  # the steps by hand still reach a person
        return f"skipped_{blocked}"
    later = contact_policy.wait_until(db, participant, task.kind, now)
    outcome = _defer_to(task, later) if later is not None else _start_dna_text(db, rt, task, participant, now)
    deadline = task.payload.get("deadline")
    if outcome == DEFERRED and first and deadline and task.due_at and task.due_at > datetime.fromisoformat(deadline):
        dna_ladder.first_contact_task(db, participant, task, now, "no text can arrive in time")
    return outcome


def _start_dna_text(db: Session, rt: Runtime, task: DueTask, participant: Participant, now: datetime) -> str:
    outcome = _start(db, rt, task, participant, now, "dna_followup", extra={"attempt": task.payload["attempt"]})
    if outcome != DEFERRED:
        dna_ladder.log_text(db, participant, task, now)
        dna_ladder.plan_next(db, task, participant, now, texted=True)
    return outcome


def run_dna_unanswered(db: Session, rt: Runtime, task: DueTask, participant: Participant, now: datetime) -> str:
    assert participant.id is not None
    if appointments.replied_since(db, participant.id, datetime.fromisoformat(task.payload["marked_at"])):
        return "ended_replied"
    return dna_ladder.review(db, task, participant, now)


def run_questionnaire(db: Session, rt: Runtime, task: DueTask, participant: Participant, now: datetime) -> str:
    """Ask the service's questionnaires: never two at once, never during another flow's question."""
    from assistant.care.measures import plan_questionnaires

    blocked = contact_policy.blocked_by(participant, now)
    reason = task.payload.get("reason", "every")
    if blocked:
        outcome = f"skipped_{blocked}"
    elif (later := contact_policy.wait_until(db, participant, "questionnaire", now)) is not None:
        return _defer_to(task, later)
    else:
        settings = settings_for(db, participant)
        flow = rt.flows.questionnaire(list(task.payload.get("instruments") or settings.questionnaire_instruments))
        assert participant.id is not None
        waiting = active_session(db, participant.id) or on_page(db, participant.id)
        if waiting is not None:  # never during another flow's question, never two at once
            return _defer_to(task, max(waiting.wait_until or now, now) + timedelta(minutes=1))
        expires_after = timedelta(hours=settings.questionnaire_expires_hours)
        if settings.questionnaire_by == "link":
            send_link(db, rt, participant, flow, now, expires_after=expires_after)
        else:
            start_expiring_flow(db, rt, participant, flow, now, expires_after=expires_after)
        outcome = "sent"
    if reason in ("start", "every") and task.due_at is not None:
        plan_questionnaires(db, participant, now, after=task.due_at, reason="every")
    return outcome


WELCOME_KEY = "journey/welcome"


def _not_now(db: Session, task: DueTask, participant: Participant, kind: str, now: datetime) -> str | None:
    """The contact policy for a routine contact: why it is skipped, or that it waits (deferred)."""
    blocked = contact_policy.blocked_by(participant, now)
    if blocked:
        return f"skipped_{blocked}"
    later = contact_policy.wait_until(db, participant, kind, now)
    busy = kind == "gentle_followup" and (active_session(db, participant.id or 0) or on_page(db, participant.id or 0))
    if later is None and busy:
        later = now + timedelta(hours=1)  # another flow is waiting for an answer: never interrupt it
    return _defer_to(task, later) if later is not None else None


def run_welcome(db: Session, rt: Runtime, task: DueTask, participant: Participant, now: datetime) -> str:
    """One welcome, at the next allowed time; never after support ended or to someone blocked."""
    from assistant.contact.referrals import welcome_vars

    if (why := _not_now(db, task, participant, "welcome", now)) is not None:
        return why
    variables = welcome_vars(db, participant, now)
    queue_sms(db, rt, participant, WELCOME_KEY, now, variables=variables, automated=True)
    return "sent"


def run_sustainment(db: Session, rt: Runtime, task: DueTask, participant: Participant, now: datetime) -> str:
    """Ask "Are you still in work?" for the job start this row belongs to, if it is still the latest."""

    assert participant.id is not None
    job = db.get(JobStart, task.payload.get("job_start_id"))
    latest = latest_job(db, participant.id)
    if job is None or latest is None or latest.id != job.id:
        return "withdrawn_changed"  # a later job start has its own checks
    if (why := _not_now(db, task, participant, "sustainment", now)) is not None:
        return why
    extra = {"weeks": task.payload.get("weeks"), "job_start_id": job.id}
    return _start(db, rt, task, participant, now, "sustainment", extra=extra)


FOLLOW_UP_KEY = "gentle_followup/thinking_of_you"


def run_gentle_followup(db: Session, rt: Runtime, task: DueTask, participant: Participant, now: datetime) -> str:
    """One light text when a check-in has gone unanswered for longer than is usual for them
    (care.rhythm plans it): only while they are still quiet, in allowed hours, never mid-flow."""
    assert participant.id is not None
    _, row = rhythm_of(db, participant)
    since = row.first_pending_at.isoformat() if row is not None and row.first_pending_at else None
    if row is None or row.pending == 0 or since != task.payload.get("first_pending_at"):
        return "withdrawn_replied"  # they wrote since: this silence is over (a new one is judged afresh)
    if (why := _not_now(db, task, participant, "gentle_followup", now)) is not None:
        return why
    queue_sms(db, rt, participant, FOLLOW_UP_KEY, now, automated=True)
    note_ask(db, participant, now)
    return "sent"


Handler = Callable[[Session, Runtime, DueTask, Participant, datetime], str]
HANDLERS: dict[str, Handler] = {
    "checkin": run_checkin,
    "appt_reminder": run_reminder,
    "interview_good_luck": run_reminder,
    "dna_attempt": run_dna_attempt,
    "dna_unanswered": run_dna_unanswered,
    "questionnaire": run_questionnaire,
    "welcome": run_welcome,
    "sustainment": run_sustainment,
    "pause_end": run_pause_end,
    "gentle_followup": run_gentle_followup,
}
