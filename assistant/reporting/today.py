"""The specialist's day: what to do, most urgent first, each done with one action that logs the contact.

Urgent flags, then call tasks, then letters and emails, then callbacks (people who asked to be
called, or to rebook), then people not contacted this week. The Today page
(assistant/web/today.py) and `assistant today` (assistant/cli/today.py) show the same list.
Doing an item writes a contact-log row (weekly-contact and follow-up evidence); reaching the
person also ends a missed-appointment ladder still under way. Nothing here ends support.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from assistant.care.flags import acknowledge, resolve
from assistant.contact import dna_ladder
from assistant.db.models import (
    Appointment,
    ContactLog,
    Flag,
    FlagStatus,
    Message,
    Participant,
    StaffTask,
    StaffTaskStatus,
)
from assistant.timing import local_at

CALLBACK_KINDS = ("callback", "rebook_requested")
CHANNELS = {
    "phone": "Phone call",
    "sms": "Text",
    "email": "Email",
    "letter": "Letter",
    "in_person": "In person",
    "video": "Video call",
    "other": "Other",
}
OUTCOMES = {
    "reached": "Spoke with them",
    "not_reached": "Could not reach them",
    "sent": "Sent (letter, email or text)",
}
GROUPS = {
    0: "Urgent flag",
    1: "Call",
    2: "Letter or email",
    3: "Callback",
    4: "Not contacted this week",
}
TASK_CHANNEL = {"call": "phone", "email": "email", "letter": "letter"}


@dataclass(frozen=True)
class Item:
    ref: str  # what the done action acts on: "flag:ID", "task:ID" or "person:ID"
    rank: int
    participant_id: int
    first_name: str
    external_id: str
    what: str
    since: datetime | None
    channel: str  # the channel the done form suggests

    @property
    def group(self) -> str:
        return GROUPS[self.rank]


def week_start(now: datetime, tz: str) -> datetime:
    """Monday 00:00 this week, local time."""
    today = now.astimezone(ZoneInfo(tz)).date()
    return local_at(today - timedelta(days=today.weekday()), time(0, 0), tz)


def contacted_since(db: Session, ids: list[int], since: datetime) -> set[int]:
    """Who replied, attended or was contacted by a person since then (the weekly-contact evidence)."""
    replied = db.exec(
        select(Message.participant_id).where(
            col(Message.participant_id).in_(ids), Message.direction == "in", col(Message.at) >= since
        )
    ).all()
    attended = db.exec(
        select(Appointment.participant_id).where(
            col(Appointment.participant_id).in_(ids),
            Appointment.outcome == "attended",
            col(Appointment.starts_at) >= since,
        )
    ).all()
    logged = db.exec(
        select(ContactLog.participant_id).where(
            col(ContactLog.participant_id).in_(ids), col(ContactLog.at) >= since, col(ContactLog.automated).is_(False)
        )
    ).all()
    return {i for i in (*replied, *attended, *logged) if i is not None}


def _item(ref: str, rank: int, person: Participant, what: str, since: datetime | None, channel: str) -> Item:
    assert person.id is not None
    return Item(ref, rank, person.id, person.first_name, person.external_id, what, since, channel)


def day_list(db: Session, specialist_id: int, now: datetime, tz: str) -> list[Item]:
    """Everything on one specialist's list today, most urgent first, oldest first within a kind."""
    today = now.astimezone(ZoneInfo(tz)).date()
    people = {
        p.id: p
        for p in db.exec(
            select(Participant).where(Participant.specialist_id == specialist_id, col(Participant.erased_at).is_(None))
        ).all()
    }
    ids = [i for i in people if i is not None]
    items: list[Item] = []
    flags = db.exec(
        select(Flag).where(
            col(Flag.participant_id).in_(ids), col(Flag.status).in_((FlagStatus.OPEN, FlagStatus.ACKNOWLEDGED))
        )
    ).all()
    for flag in flags:
        if flag.severity == "urgent" or flag.kind in CALLBACK_KINDS:
            rank = 0 if flag.severity == "urgent" else 3
            what = flag.reason + (" (acknowledged)" if flag.status == FlagStatus.ACKNOWLEDGED else "")
            items.append(_item(f"flag:{flag.id}", rank, people[flag.participant_id], what, flag.created_at, "phone"))
    end_of_day = local_at(today + timedelta(days=1), time(0, 0), tz)
    tasks = db.exec(
        select(StaffTask).where(
            col(StaffTask.participant_id).in_(ids),
            StaffTask.status == StaffTaskStatus.OPEN,
            col(StaffTask.due_at) < end_of_day,
        )
    ).all()
    for task in tasks:
        rank = 1 if task.kind == "call" else 2
        channel = TASK_CHANNEL.get(task.kind, "other")
        items.append(_item(f"task:{task.id}", rank, people[task.participant_id], task.reason, task.due_at, channel))
    listed = {i.participant_id for i in items}
    contacted = contacted_since(db, ids, week_start(now, tz))
    for pid, person in people.items():
        ended = person.support_ends_on is not None and person.support_ends_on < today
        if pid in listed or pid in contacted or ended:
            continue
        items.append(_item(f"person:{pid}", 4, person, "No contact logged or reply this week", None, "phone"))
    return sorted(items, key=lambda i: (i.rank, i.since or now, i.ref))


def participant_of(db: Session, ref: str) -> int | None:
    """The participant an item is about (for the caller's access check), or None if there is no such item."""
    kind, _, raw = ref.partition(":")
    if not raw.isdigit():
        return None
    if kind == "flag":
        flag = db.get(Flag, int(raw))
        return flag.participant_id if flag is not None and flag.status != FlagStatus.RESOLVED else None
    if kind == "task":
        task = db.get(StaffTask, int(raw))
        return task.participant_id if task is not None and task.status == StaffTaskStatus.OPEN else None
    if kind == "person":
        person = db.get(Participant, int(raw))
        return person.id if person is not None else None
    return None


def complete(db: Session, ref: str, *, by: str, channel: str, outcome: str, note: str, now: datetime) -> ContactLog:
    """Do one item: log the contact, and close what it closes. The caller checks access first."""
    if channel not in CHANNELS or outcome not in OUTCOMES:
        raise ValueError("choose how you made contact and what came of it")
    participant_id = participant_of(db, ref)
    if participant_id is None:
        raise LookupError(ref)
    said = f"{CHANNELS[channel]}: {OUTCOMES[outcome].lower()}" + (f". {note.strip()}" if note.strip() else "")
    log = ContactLog(
        participant_id=participant_id,
        at=now,
        channel=channel,
        note=said[:2000],
        logged_by=by,
        logged_at=now,
        outcome=outcome,
    )
    db.add(log)
    db.flush()
    kind, _, raw = ref.partition(":")
    if kind == "flag":
        flag = db.get(Flag, int(raw))
        assert flag is not None
        if outcome == "reached":
            resolve(db, flag, by=by, note=said, now=now)
        else:
            acknowledge(db, flag, by=by, note=said, now=now)  # still to do: it stays on the list
    elif kind == "task":
        task = db.get(StaffTask, int(raw))
        assert task is not None
        task.status, task.done_at, task.done_by, task.contact_log_id = StaffTaskStatus.DONE, now, by, log.id
        db.add(task)
    if outcome == "reached":
        dna_ladder.end_on_contact(db, participant_id, "reached", now)
    return log
