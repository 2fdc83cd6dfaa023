"""Participants steer their own contact by text: PAUSE, LESS, MORE, another day or time.

Words first, keywords as a shortcut: the understanding module reads what a text asks for
(signals pause, less, more and contact_time, from phrases/<locale>/), and
`engine.contact_words` reads the particulars (how many weeks, which day, what time).
Each change is confirmed back in plain words, recorded as a ContactRequest, audited, and
shown to the specialist as an information flag (their daily digest and the record).

Risk is read first, always (assistant/conversation/router.py): a text that reads like a crisis is
never taken as a control. Its signposting and the urgent flag come first, and nothing
here changes anyone's contact on it; the specialist reads what else it asked for.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from assistant.care.quiet import allowed_windows
from assistant.contact.pause import audit_change, replan_checkin
from assistant.db.models import ContactRequest, DueTask, Participant, RequestStatus, TaskStatus
from assistant.db.open_items import pending_tasks
from assistant.db.service_settings import settings_for
from assistant.engine.contact_words import DAYS, time_in, weeks_in
from assistant.engine.contact_words import day_in as day_named
from assistant.outbox.writer import queue_sms, withdraw_outbox
from assistant.timing import parse_hhmm
from assistant.windows import describe, inside

if TYPE_CHECKING:
    from assistant.conversation.router import Text

PAUSE_WEEKS = (1, 2, 4)
CADENCES = (1, 2, 4)
# A question back ("how long a break?") is answered within this long, or forgotten.
ASK_VALID_FOR = timedelta(days=2)
# A day or time said in reply to these is about the appointment, not the texts.
APPOINTMENT_FLOWS = ("appointment_reminder", "dna_followup", "interview_good_luck")
CADENCE_WORDS = {1: "every week", 2: "every two weeks", 4: "every four weeks"}


# ---------------------------------------------------------------------------- records


def record(
    db: Session, participant: Participant, kind: str, status: str, now: datetime, **detail: Any
) -> ContactRequest:
    """The request on the record, and in the audit log as the participant's own act."""
    assert participant.id is not None
    request = ContactRequest(
        participant_id=participant.id,
        kind=kind,
        status=status,
        detail=detail,
        created_at=now,
        expires_at=now + ASK_VALID_FOR if status == RequestStatus.ASKED else None,
        done_at=None if status == RequestStatus.ASKED else now,
    )
    db.add(request)
    db.flush()
    audit_change(db, participant, kind, status, now, request_id=request.id, **detail)
    return request


def show_specialist(db: Session, text: Text, reason: str, *, severity: str = "info", **evidence: Any) -> None:
    """Every change a participant makes by text is shown to their specialist."""
    kind = "contact_changed" if severity == "info" else "contact_request"
    text.flag(kind, severity, reason, **evidence)


def open_request(db: Session, participant_id: int, kind: str, status: str, now: datetime) -> ContactRequest | None:
    return db.exec(
        select(ContactRequest)
        .where(
            ContactRequest.participant_id == participant_id,
            ContactRequest.kind == kind,
            ContactRequest.status == status,
            col(ContactRequest.expires_at) > now,
        )
        .order_by(col(ContactRequest.id).desc())
    ).first()


def reply(text: Text, key: str, *, to: str | None = None, **variables: Any) -> None:
    """Queue the confirmation (to another number if given): it is this text's reply."""
    text.outcome.outbox.append(queue_sms(text.db, text.rt, text.participant, key, text.now, variables=variables, to=to))
    text.replied = True


def local_day(at: datetime, tz: str) -> str:
    local = at.astimezone(ZoneInfo(tz))
    return f"{local:%a} {local.day} {local:%b}"


def local_slot(at: datetime, tz: str) -> str:
    return f"{local_day(at, tz)} at {at.astimezone(ZoneInfo(tz)):%H:%M}"


# ---------------------------------------------------------------------------- pause


def apply_pause(text: Text, weeks: int) -> None:
    db, participant, now = text.db, text.participant, text.now
    assert participant.id is not None
    until = now + timedelta(weeks=weeks)
    for task in db.exec(pending_tasks(participant.id, "pause_end")).all():
        task.status, task.outcome, task.done_at = TaskStatus.CANCELLED, "replaced", now
        db.add(task)
    for asked in db.exec(
        select(ContactRequest).where(
            ContactRequest.participant_id == participant.id,
            ContactRequest.kind == "pause",
            ContactRequest.status == RequestStatus.ASKED,
        )
    ).all():
        asked.status, asked.done_at = RequestStatus.ANSWERED, now
        db.add(asked)
    withdraw_outbox(db, participant.id, reason="paused")
    participant.paused, participant.paused_until = True, until
    db.add(participant)
    request = record(db, participant, "pause", RequestStatus.DONE, now, weeks=weeks, until=until.isoformat())
    db.add(
        DueTask(
            participant_id=participant.id,
            kind="pause_end",
            due_at=until,
            created_at=now,
            payload={"request_id": request.id, "until": until.isoformat()},
        )
    )
    length = "1 week" if weeks == 1 else f"{weeks} weeks"
    show_specialist(
        db, text, f"Paused automated texts by text for {length}, until {local_day(until, participant.timezone)}",
        weeks=weeks,
    )  # fmt: skip
    reply(text, "common/pause_confirmed", length=length, until=local_day(until, participant.timezone))


def pause(text: Text) -> bool:
    """PAUSE, or a break asked for in their own words: how long, then the break, then a gentle note."""
    if text.crisis or not text.reading.has("pause"):
        return False
    text.end_flow("pause")
    weeks = weeks_in(text.message.body)
    if weeks in PAUSE_WEEKS:
        assert weeks is not None
        apply_pause(text, weeks)
    else:
        record(text.db, text.participant, "pause", RequestStatus.ASKED, text.now, words=text.reading.words("pause"))
        reply(text, "common/pause_ask")
        # Nothing else in it: the answer will tell the specialist. Otherwise the rest is acted on too.
        return set(text.reading.kinds()) <= {"pause"}
    return False  # a cancellation or a call asked for in the same text is still acted on


def pause_length(text: Text) -> bool:
    """The answer to "how long a break?": 1, 2 or 4 (weeks)."""
    assert text.participant.id is not None
    if text.crisis or (text.waiting is not None and not text.flow_done):
        return False  # a question asked since is what this answers
    if open_request(text.db, text.participant.id, "pause", RequestStatus.ASKED, text.now) is None:
        return False
    weeks = weeks_in(text.message.body)
    if weeks not in PAUSE_WEEKS:
        return False  # not an answer: the text goes on to the rest, and the question stays open a while
    assert weeks is not None
    apply_pause(text, weeks)
    return True


# ---------------------------------------------------------------------------- less and more


def next_cadence(current: int, less: bool) -> int:
    if less:
        return next((c for c in CADENCES if c > current), CADENCES[-1])
    return next((c for c in reversed(CADENCES) if c < current), CADENCES[0])


def less_or_more(text: Text) -> bool:
    """LESS and MORE step the check-ins between every week, two weeks and four weeks."""
    less, more = text.reading.has("less"), text.reading.has("more")
    if text.crisis or less == more:
        return False  # neither, or both: a person reads it
    participant = text.participant
    old = participant.checkin_every_weeks
    new = next_cadence(old, less)
    kind = "less" if less else "more"
    if new == old:
        record(text.db, participant, kind, RequestStatus.UNCHANGED, text.now, every_weeks=old)
        text.end_flow(kind)
        reply(text, "common/cadence_unchanged", cadence=CADENCE_WORDS.get(old, f"every {old} weeks"), less=less)
        return False
    participant.checkin_every_weeks = new
    text.db.add(participant)
    record(text.db, participant, kind, RequestStatus.DONE, text.now, every_weeks=new, was=old)
    text.end_flow(kind)
    due = replan_checkin(text.db, participant, text.now, old_every=old)
    show_specialist(
        text.db, text, f"Asked by text for {'fewer' if less else 'more'} check-ins: now {CADENCE_WORDS[new]}",
        every_weeks=new, was=old,
    )  # fmt: skip
    reply(text, "common/cadence_changed", cadence=CADENCE_WORDS[new], next=local_slot(due, participant.timezone))
    return False


# ---------------------------------------------------------------------------- day and time


def day_or_time(text: Text) -> bool:
    """ "Can you text on Thursdays instead", "after 6pm", "mornings are better"."""
    if text.crisis or not text.reading.has("contact_time"):
        return False
    about_appointment = text.waiting is not None and text.waiting.flow in APPOINTMENT_FLOWS
    if about_appointment or any(text.reading.has(k) for k in ("call", "cancel", "rebook")):
        return False  # about a call or an appointment: the specialist reads it
    db, participant, body = text.db, text.participant, text.message.body
    day, at = day_named(body), time_in(body)
    windows = allowed_windows(participant, settings_for(db, participant))
    new_time = at or participant.checkin_time
    if (day is None and at is None) or not inside(parse_hhmm(new_time), windows):
        outside = at is not None and not inside(parse_hhmm(at), windows)
        text.end_flow("day_time")
        record(db, participant, "day_time", RequestStatus.PASSED_ON, text.now, day=day, time=at)
        show_specialist(
            db, text, "Asked by text for texts at another day or time: please agree it with them",
            severity="action", words=text.reading.words("contact_time"),
        )  # fmt: skip
        reply(text, "common/time_passed_on", window=describe(windows) if outside else "")
        return False
    if day in (None, participant.checkin_day) and new_time == participant.checkin_time:
        text.end_flow("day_time")  # already when they asked for: say so, and change nothing
        record(db, participant, "day_time", RequestStatus.UNCHANGED, text.now, day=day, time=at)
        day_words = f"{DAYS[participant.checkin_day].capitalize()}s"
        reply(text, "common/time_unchanged", day=day_words, time=new_time)
        return False
    was = f"{DAYS[participant.checkin_day]} {participant.checkin_time}"
    if day is not None:
        participant.checkin_day = day
    participant.checkin_time = new_time
    db.add(participant)
    text.end_flow("day_time")
    due = replan_checkin(db, participant, text.now)
    record(
        db,
        participant,
        "day_time",
        RequestStatus.DONE,
        text.now,
        day=DAYS[participant.checkin_day],
        time=new_time,
        was=was,
    )
    day_words = f"{DAYS[participant.checkin_day].capitalize()}s"
    show_specialist(db, text, f"Asked by text for check-ins on {day_words} at {new_time} (was {was})")
    reply(text, "common/time_changed", day=day_words, time=new_time, next=local_slot(due, participant.timezone))
    return False
