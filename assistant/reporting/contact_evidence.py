"""Weekly contact evidence: who was contacted, who was tried without success, and who was not tried.

Counted among active participants only: on the caseload before the week ended, support not ended
before it began nor starting after it, not paused (the record has one pause switch, set by the
participant's request, the specialist, or a "wrong number" reply: nobody paused is counted), not
erased. Contact is a reply from them, an appointment they attended, or a contact logged by staff;
an attempt is a text that left us (whatever became of it) or an appointment they did not attend.
Out-of-work participants are measured week by week. In-work participants are measured against
their own agreed cadence: the record's check-in interval (`checkin_every_weeks`), so someone
texted every four weeks counts as contacted if contact happened in the four weeks ending with
this one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session, col, select

from assistant.db.models import Appointment, ContactLog, Message, MessageStatus, Participant, Specialist
from assistant.timing import local_at

ISO_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CONTACT_KINDS = ("reply", "attended", "logged")
SENT = (
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
    MessageStatus.FAILED,
)  # texts that left us: attempts, whatever became of them
IN_WORK = "in_work"
MAX_CADENCE_WEEKS = 13
CONTACTED, ATTEMPTED, NOT_ATTEMPTED = "contacted", "attempted", "not attempted"


def week_monday(week: str) -> date:
    """The Monday of a week given as a date in it (2026-11-25) or an ISO week (2026-W48)."""
    text = week.strip()
    if DAY.match(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"no such date: {week!r}") from None
        return day - timedelta(days=day.weekday())
    match = ISO_WEEK.match(text)
    if not match:
        raise ValueError(f"not a date like 2026-11-23 or an ISO week like 2026-W48: {week!r}")
    try:
        return date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    except ValueError:
        raise ValueError(f"no such week: {week!r}") from None


def cadence_weeks(person: Participant) -> int:
    """How many weeks the participant's own contact standard spans: 1, or their agreed check-in
    interval if they are in work. Read defensively: a missing or odd value means weekly."""
    if getattr(person, "cohort", None) != IN_WORK:
        return 1
    every = getattr(person, "checkin_every_weeks", 1)
    return min(max(every, 1), MAX_CADENCE_WEEKS) if isinstance(every, int) else 1


def inactive_reason(person: Participant, first_day: date, last_day: date, end: datetime) -> str | None:
    """Why a participant is not counted in the week [first_day, last_day] (None: they are active)."""
    if person.erased_at is not None:
        return "erased"
    if person.created_at is not None and person.created_at >= end:
        return "not yet on the caseload"
    if person.support_started_on is not None and person.support_started_on > last_day:
        return "not yet started"
    if person.support_ends_on is not None and person.support_ends_on < first_day:
        return "ended"
    if person.paused:
        return "paused"
    return None


@dataclass(frozen=True)
class Attempt:
    at: datetime
    what: str  # the message key, or "appointment not attended"
    status: str


@dataclass
class PersonWeek:
    participant_id: int
    external_id: str
    first_name: str
    specialist_id: int
    cohort: str
    weeks: int  # the span measured: 1, or an in-work participant's cadence
    since: datetime
    contacted: list[str] = field(default_factory=list)  # kinds of contact found
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        return CONTACTED if self.contacted else (ATTEMPTED if self.attempts else NOT_ATTEMPTED)


@dataclass
class Tally:
    active: int = 0
    contacted: int = 0
    attempted: int = 0
    not_attempted: int = 0
    by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CONTACT_KINDS, 0))

    @property
    def percent(self) -> float:
        return round(100 * self.contacted / self.active, 1) if self.active else 0.0


@dataclass
class WeeklyContact:
    monday: date
    start: datetime
    end: datetime
    people: list[PersonWeek]
    specialists: dict[int, Specialist]
    excluded: dict[str, int]

    def tally(self, specialist_id: int | None = None, cohort: str | None = None) -> Tally:
        result = Tally()
        for person in self.people:
            if (specialist_id is not None and person.specialist_id != specialist_id) or (
                cohort is not None and person.cohort != cohort
            ):
                continue
            result.active += 1
            outcome = person.outcome
            if outcome == CONTACTED:
                result.contacted += 1
                for kind in person.contacted:
                    result.by_kind[kind] += 1
            elif outcome == ATTEMPTED:
                result.attempted += 1
            else:
                result.not_attempted += 1
        return result

    def cohorts(self) -> list[str]:
        return sorted({p.cohort for p in self.people})

    def specialist_ids(self) -> list[int]:
        ids = {p.specialist_id for p in self.people}
        return sorted(ids, key=lambda i: (self.specialists[i].name or self.specialists[i].email).lower())

    def not_reached(self, specialist_id: int | None = None) -> list[PersonWeek]:
        """The people tried without success or not tried, for those allowed to see them."""
        return [
            p
            for p in self.people
            if p.outcome != CONTACTED and (specialist_id is None or p.specialist_id == specialist_id)
        ]


def weekly_contact(db: Session, week: str, tz: str, people_query: Any) -> WeeklyContact:
    """The week's evidence for the participants `people_query` (a select of Participant) finds."""
    monday = week_monday(week)
    start, end = local_at(monday, time(0, 0), tz), local_at(monday + timedelta(days=7), time(0, 0), tz)
    last_day = monday + timedelta(days=6)
    excluded: dict[str, int] = {}
    people: list[PersonWeek] = []
    for person in db.exec(people_query).all():
        assert person.id is not None
        reason = inactive_reason(person, monday, last_day, end)
        if reason:
            excluded[reason] = excluded.get(reason, 0) + 1
            continue
        weeks = cadence_weeks(person)
        since = local_at(monday - timedelta(weeks=weeks - 1), time(0, 0), tz)
        people.append(
            PersonWeek(
                person.id, person.external_id, person.first_name, person.specialist_id, person.cohort, weeks, since
            )
        )
    _gather(db, people, end)
    owners = {p.specialist_id for p in people}
    specialists = {s.id: s for s in db.exec(select(Specialist).where(col(Specialist.id).in_(owners))).all()}
    return WeeklyContact(monday, start, end, people, specialists, excluded)  # type: ignore[arg-type]


def _gather(db: Session, people: list[PersonWeek], end: datetime) -> None:
    """Each person's contact and attempts within their own span, in a few queries."""
    if not people:
        return
    by_id = {p.participant_id: p for p in people}
    found = _evidence(db, list(by_id), min(p.since for p in people), end)
    for pid, kind, at, detail in sorted(found, key=lambda f: f[2]):
        person = by_id[pid]
        if at < person.since:
            continue
        if kind in CONTACT_KINDS:
            if kind not in person.contacted:
                person.contacted.append(kind)
        elif kind == "dna":
            person.attempts.append(Attempt(at, "appointment not attended", "dna"))
        else:
            what, _, status = (detail or "").partition("|")
            person.attempts.append(Attempt(at, what, status))
    for person in people:
        person.contacted.sort(key=CONTACT_KINDS.index)


def _evidence(
    db: Session, ids: list[int], earliest: datetime, end: datetime
) -> list[tuple[int, str, datetime, str | None]]:
    """(participant, kind, at, detail) for every reply, attended or missed appointment, logged
    contact and text sent to these people from `earliest` until `end`."""
    found: list[tuple[int, str, datetime, str | None]] = []
    for pid, at in db.exec(
        select(Message.participant_id, Message.at).where(
            col(Message.participant_id).in_(ids),
            Message.direction == "in",
            col(Message.at) >= earliest,
            col(Message.at) < end,
        )
    ).all():
        found.append((pid, "reply", at, None))  # type: ignore[arg-type]
    for pid, at, outcome in db.exec(
        select(Appointment.participant_id, Appointment.starts_at, Appointment.outcome).where(
            col(Appointment.participant_id).in_(ids),
            col(Appointment.outcome).in_(("attended", "dna")),
            col(Appointment.starts_at) >= earliest,
            col(Appointment.starts_at) < end,
        )
    ).all():
        found.append((pid, "attended" if outcome == "attended" else "dna", at, outcome))  # type: ignore[arg-type]
    for pid, at in db.exec(
        select(ContactLog.participant_id, ContactLog.at).where(
            col(ContactLog.participant_id).in_(ids),
            col(ContactLog.at) >= earliest,
            col(ContactLog.at) < end,
            col(ContactLog.automated).is_(False),  # the assistant's own texts: a reply is the evidence
        )
    ).all():
        found.append((pid, "logged", at, None))  # type: ignore[arg-type]
    for pid, at, key, status in db.exec(
        select(Message.participant_id, Message.at, Message.message_key, Message.status)
        .where(
            col(Message.participant_id).in_(ids),
            Message.direction == "out",
            col(Message.status).in_(SENT),
            col(Message.at) >= earliest,
            col(Message.at) < end,
        )
        .order_by(col(Message.at), col(Message.id))
    ).all():
        found.append((pid, "text", at, f"{key or 'text'}|{status}"))  # type: ignore[arg-type]
    return found
