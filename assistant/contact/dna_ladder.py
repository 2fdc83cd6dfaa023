"""After a missed appointment: a ladder of attempts across media, planned one step at a time.

Each step is a due row (kind "dna_attempt", or "dna_unanswered" for the closing review) that
remembers the ladder it was planned from, so a settings change never muddles one under way.
A text step starts the follow-up flow; a call, email or letter step puts a task on the
specialist's Today list; the review raises a flag asking a person to consider next steps.
Texts go at a different time of day each time, even in a narrow window. The first contact
is due within the service's hours (24 by default): when no text can arrive in time (quiet
hours, a bank holiday, texts turned off), the specialist gets a call task at once. Every
attempt is logged as evidence. Any reply, or the specialist reaching them, ends the ladder.
Nothing here ends, closes or pauses support.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from assistant.care.flags import raise_flag
from assistant.care.quiet import _day_allowed, allowed_window, is_bank_holiday, next_allowed
from assistant.contact.policy import blocked_by
from assistant.db.dna_steps import REVIEW, SMS, Step, parse_ladder, text_wording
from assistant.db.models import Appointment, ContactLog, DueTask, Participant, StaffTask, TaskStatus
from assistant.db.open_items import LADDER_TASKS, pending_tasks
from assistant.db.service_settings import ServiceSettings, settings_for
from assistant.timing import local_at, parse_hhmm

SOURCE = "dna_followup"
AUTOMATED_BY = "assistant"
# Tasks for the specialist, and the review, land at the start of a working day.
TASK_TIME = time(9, 0)
# Two texts count as at different times of day when this far apart, if the window allows.
APART = 60
WHAT = {"call": "phone them", "email": "email them", "letter": "send them a letter"}


def _minutes(at: time) -> int:
    return at.hour * 60 + at.minute


def _clock(minutes: int) -> time:
    return time(minutes // 60, minutes % 60)


def _steps(payload: dict[str, Any], settings: ServiceSettings) -> list[Step]:
    return parse_ladder(payload.get("ladder") or settings.dna_ladder)


def _row(db: Session, participant: Participant, kind: str, due: datetime, now: datetime, **payload: Any) -> DueTask:
    assert participant.id is not None
    task = DueTask(participant_id=participant.id, kind=kind, due_at=due, created_at=now, payload=payload)
    db.add(task)
    db.flush()
    return task


def text_time(day: date, used: list[str], participant: Participant, settings: ServiceSettings) -> datetime:
    """A text on `day` (or the next day texts may arrive), at a time of day unlike the ones used.

    The service's times in turn, those inside the participant's window; then the window's
    start, middle and end: so a narrow evening window still gets 17:30, then 18:45, then 19:30.
    """
    while not _day_allowed(day, settings):
        day += timedelta(days=1)
    start, end = (_minutes(t) for t in allowed_window(participant, settings))
    turn = len(used) % len(settings.dna_times)
    rotated = settings.dna_times[turn:] + settings.dna_times[:turn]
    candidates = [m for m in (_minutes(parse_hhmm(t)) for t in rotated) if start <= m < end]
    candidates += [start, start + (end - start) // 2 // 15 * 15, max(start, end - 30)]
    taken = [_minutes(parse_hhmm(t)) for t in used]

    def apart(m: int) -> int:
        return min((abs(m - t) for t in taken), default=24 * 60)

    chosen = next((m for m in candidates if apart(m) >= APART), max(candidates, key=apart))
    return next_allowed(local_at(day, _clock(chosen), participant.timezone), participant, settings)


def working_day_at(day: date, settings: ServiceSettings, tz: str) -> datetime:
    """The start of the first working day from `day`: tasks are for staff, not for weekends."""
    while day.weekday() >= 5 or is_bank_holiday(day, settings.holiday_region):
        day += timedelta(days=1)
    return local_at(day, TASK_TIME, tz)


def start(db: Session, appointment: Appointment, participant: Participant, now: datetime) -> DueTask:
    """Plan the first step: as soon as a text may arrive, or a call task at once."""
    assert appointment.id is not None
    settings = settings_for(db, participant)
    steps = parse_ladder(settings.dna_ladder)
    deadline = now + timedelta(hours=settings.dna_first_within_hours)
    common = {
        "appointment_id": appointment.id,
        "marked_at": now.isoformat(),
        "deadline": deadline.isoformat(),
        "ladder": [str(s) for s in steps],
        "times": [],
    }
    first = steps[0]
    due = next_allowed(now, participant, settings) if first.channel == SMS else now
    row = _row(db, participant, "dna_attempt", due, now, step=0, channel=first.channel, attempt=1, **common)
    if first.channel == SMS:
        blocked = blocked_by(participant)
        if blocked or due > deadline:
            why = f"texts are off ({blocked.replace('_', ' ')})" if blocked else "no text can arrive in time"
            first_contact_task(db, participant, row, now, why)
    return row


def first_contact_task(db: Session, participant: Participant, row: DueTask, now: datetime, why: str) -> None:
    """The first contact is due within hours: if a text cannot make it, a person phones (once)."""
    assert participant.id is not None
    appointment_id = row.payload.get("appointment_id")
    open_tasks = db.exec(
        select(StaffTask).where(StaffTask.participant_id == participant.id, StaffTask.source == SOURCE)
    ).all()
    if any(t.payload.get("appointment_id") == appointment_id and t.payload.get("first_contact") for t in open_tasks):
        return
    hours = settings_for(db, participant).dna_first_within_hours
    db.add(
        StaffTask(
            participant_id=participant.id,
            kind="call",
            reason=f"Missed appointment: first contact is due within {hours} hours and {why}: phone them",
            source=SOURCE,
            payload={"appointment_id": appointment_id, "step": 0, "first_contact": True},
            due_at=now,
            created_at=now,
        )
    )


def log_text(db: Session, participant: Participant, row: DueTask, now: datetime) -> None:
    """A follow-up text went: evidence of the attempt (a reply, not the text, is evidence of contact)."""
    assert participant.id is not None
    steps = _steps(row.payload, settings_for(db, participant))
    step = int(row.payload.get("step", 0))
    db.add(
        ContactLog(
            participant_id=participant.id,
            at=now,
            channel="sms",
            note=f"Missed-appointment follow-up text (step {step + 1} of {len(steps)})",
            logged_by=AUTOMATED_BY,
            logged_at=now,
            outcome="sent",
            automated=True,
        )
    )


def open_task(db: Session, row: DueTask, participant: Participant, now: datetime) -> str:
    """A call, email or letter step: a task on the specialist's Today list, then the next step."""
    assert participant.id is not None and row.due_at is not None
    settings = settings_for(db, participant)
    steps = _steps(row.payload, settings)
    index = int(row.payload.get("step", 0))
    step = steps[index]
    appointment = db.get(Appointment, row.payload.get("appointment_id"))
    missed = ""
    if appointment is not None and appointment.starts_at is not None:
        local = appointment.starts_at.astimezone(ZoneInfo(participant.timezone))
        missed = f" on {local:%a} {local.day} {local:%b}"
    db.add(
        StaffTask(
            participant_id=participant.id,
            kind=step.channel,
            reason=f"Missed appointment{missed}, no reply yet: {WHAT[step.channel]} "
            f"(follow-up step {index + 1} of {len(steps)})",
            source=SOURCE,
            payload={"appointment_id": row.payload.get("appointment_id"), "step": index},
            due_at=row.due_at,
            created_at=now,
        )
    )
    plan_next(db, row, participant, now)
    return f"task_{step.channel}"


def plan_next(db: Session, row: DueTask, participant: Participant, now: datetime, *, texted: bool = False) -> DueTask:
    """The step after `row`, on its day counted from when the missed appointment was recorded."""
    assert row.due_at is not None
    settings = settings_for(db, participant)
    steps = _steps(row.payload, settings)
    index = int(row.payload.get("step", 0)) + 1
    step = steps[min(index, len(steps) - 1)]
    tz = ZoneInfo(participant.timezone)
    times = list(row.payload.get("times", []))
    if texted:
        times.append(f"{now.astimezone(tz):%H:%M}")
    marked = datetime.fromisoformat(row.payload.get("marked_at", now.isoformat()))
    done_day = max(now, row.due_at).astimezone(tz).date()
    day = max(marked.astimezone(tz).date() + timedelta(days=step.day), done_day + timedelta(days=1))
    if step.channel == SMS:
        due = text_time(day, times, participant, settings)
    else:
        due = working_day_at(day, settings, participant.timezone)
    payload = {k: v for k, v in row.payload.items() if k not in ("step", "channel", "attempt", "times")}
    payload.setdefault("ladder", [str(s) for s in steps])
    payload.setdefault("marked_at", marked.isoformat())
    kind = "dna_unanswered" if step.channel == REVIEW else "dna_attempt"
    attempt = text_wording(steps, index) if step.channel == SMS else 0
    return _row(
        db, participant, kind, due, now, step=index, channel=step.channel, attempt=attempt, times=times, **payload
    )


def attempts(db: Session, participant_id: int, appointment_id: int) -> list[dict[str, Any]]:
    """Every step of one ladder so far, automated or by hand, with what came of it."""
    rows = db.exec(
        select(DueTask)
        .where(DueTask.participant_id == participant_id, col(DueTask.kind).in_(LADDER_TASKS))
        .order_by(col(DueTask.id))
    ).all()
    found: list[dict[str, Any]] = [
        {
            "attempt": int(t.payload.get("step", 0)) + 1,
            "channel": t.payload.get("channel", SMS if t.kind == "dna_attempt" else REVIEW),
            "due_at": t.due_at.isoformat() if t.due_at else None,
            "status": t.status,
            "outcome": t.outcome,
            "done_at": t.done_at.isoformat() if t.done_at else None,
        }
        for t in rows
        if t.payload.get("appointment_id") == appointment_id
    ]
    tasks = db.exec(
        select(StaffTask)
        .where(StaffTask.participant_id == participant_id, StaffTask.source == SOURCE)
        .order_by(col(StaffTask.id))
    ).all()
    for task in tasks:
        if task.payload.get("appointment_id") != appointment_id:
            continue
        log = db.get(ContactLog, task.contact_log_id) if task.contact_log_id else None
        found.append(
            {
                "task": task.kind,
                "status": task.status,
                "done_by": task.done_by,
                "outcome": log.outcome if log else None,
                "done_at": task.done_at.isoformat() if task.done_at else None,
            }
        )
    return found


def review(db: Session, row: DueTask, participant: Participant, now: datetime) -> str:
    """The last step: a person considers next steps with the participant. Support stays open."""
    assert participant.id is not None
    appointment_id = int(row.payload["appointment_id"])
    steps = _steps(row.payload, settings_for(db, participant))
    raise_flag(
        db,
        participant,
        kind="consider_next_steps",
        severity="action",
        reason=f"No reply after {len(steps) - 1} follow-ups over {steps[-1].day} days since a missed "
        "appointment: consider next steps with them (support stays open)",
        now=now,
        evidence={"appointment_id": appointment_id, "attempts": attempts(db, participant.id, appointment_id)},
    )
    return "flagged"


def end_on_contact(db: Session, participant_id: int, outcome: str, now: datetime) -> int:
    """The specialist reached them: the steps still to come are not needed."""
    pending = db.exec(pending_tasks(participant_id, *LADDER_TASKS)).all()
    for task in pending:
        task.status, task.outcome, task.done_at = TaskStatus.CANCELLED, outcome, now
        db.add(task)
    return len(pending)
