"""Weekly contact evidence: for each participant and week, did contact happen, and how we know."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlmodel import Session, col, select

from .models import Appointment, ContactLog, Message, Participant, Service, Specialist
from .timing import local_at

WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def week_bounds(week: str, tz: str) -> tuple[datetime, datetime]:
    """ISO week '2026-W48' as [Monday 00:00, next Monday 00:00) local time, in UTC."""
    match = WEEK.match(week)
    if not match:
        raise ValueError(f"not an ISO week like 2026-W48: {week!r}")
    try:
        monday = date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    except ValueError:
        raise ValueError(f"no such week: {week!r}") from None
    return local_at(monday, time(0, 0), tz), local_at(monday + timedelta(days=7), time(0, 0), tz)


@dataclass
class SpecialistRow:
    email: str
    name: str
    participants: int = 0
    contacted: int = 0
    evidence: dict[str, list[str]] = field(default_factory=dict)

    @property
    def percent(self) -> float:
        return round(100 * self.contacted / self.participants, 1) if self.participants else 0.0


def contact_report(
    db: Session, week: str, tz: str, service: str | None = None, *, specialist_ids: list[int] | None = None
) -> list[SpecialistRow]:
    """Per specialist (all, or these), whether each of their participants was contacted in the week."""
    start, end = week_bounds(week, tz)
    query = select(Participant.id, Participant.specialist_id, Participant.external_id).where(
        col(Participant.created_at) < end
    )
    if service:
        query = query.join(Service, col(Service.id) == Participant.service_id).where(Service.slug == service)
    if specialist_ids is not None:
        query = query.where(col(Participant.specialist_id).in_(specialist_ids))
    people = db.exec(query).all()
    ids = select(query.subquery().c.id)  # the same people, as a subquery: no list of thousands of ids
    replied = set(
        db.exec(
            select(Message.participant_id).where(
                col(Message.participant_id).in_(ids),
                Message.direction == "in",
                col(Message.at) >= start,
                col(Message.at) < end,
            )
        ).all()
    )
    attended = set(
        db.exec(
            select(Appointment.participant_id).where(
                col(Appointment.participant_id).in_(ids),
                Appointment.outcome == "attended",
                col(Appointment.starts_at) >= start,
                col(Appointment.starts_at) < end,
            )
        ).all()
    )
    logged = set(
        db.exec(
            select(ContactLog.participant_id).where(
                col(ContactLog.participant_id).in_(ids),
                col(ContactLog.at) >= start,
                col(ContactLog.at) < end,
                col(ContactLog.automated).is_(False),  # the assistant's own texts: a reply is the evidence
            )
        ).all()
    )
    specialists = {s.id: s for s in db.exec(select(Specialist)).all()}
    rows: dict[int, SpecialistRow] = {}
    for person_id, specialist_id, external_id in people:
        owner = specialists[specialist_id]
        row = rows.setdefault(specialist_id, SpecialistRow(email=owner.email, name=owner.name))
        row.participants += 1
        how = [
            name
            for name, found in (("reply", replied), ("attended", attended), ("logged", logged))
            if person_id in found
        ]
        row.evidence[external_id] = how
        if how:
            row.contacted += 1
    return sorted(rows.values(), key=lambda r: r.email)


def report_text(rows: list[SpecialistRow], week: str) -> str:
    lines = [f"Weekly contact, {week}", f"{'specialist':40} {'participants':>12} {'contacted':>10} {'%':>6}"]
    for row in rows:
        lines.append(f"{row.email:40} {row.participants:>12} {row.contacted:>10} {row.percent:>6}")
    total = sum(r.participants for r in rows)
    contacted = sum(r.contacted for r in rows)
    percent = round(100 * contacted / total, 1) if total else 0.0
    lines.append(f"{'service total':40} {total:>12} {contacted:>10} {percent:>6}")
    return "\n".join(lines)


def cell(value: object) -> str:
    """A spreadsheet never runs what we export: cells that could start a formula are quoted."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def report_csv(rows: list[SpecialistRow], week: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["week", "specialist", "participants", "contacted", "percent"])
    for row in rows:
        writer.writerow([week, cell(row.email), row.participants, row.contacted, row.percent])
    total = sum(r.participants for r in rows)
    contacted = sum(r.contacted for r in rows)
    writer.writerow([week, "TOTAL", total, contacted, round(100 * contacted / total, 1) if total else 0.0])
    return out.getvalue()
