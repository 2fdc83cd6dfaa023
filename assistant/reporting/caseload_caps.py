"""Caseloads against the service's cap: active participants per specialist, the cap scaled by each
specialist's FTE (full-time equivalent), so a specialist working three days a week (0.6) of a
service capped at 20 has a cap of 12."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from assistant.db.models import Participant, Specialist
from assistant.reporting.contact_evidence import inactive_reason

MIN_FTE, MAX_FTE = 0.1, 1.0


@dataclass(frozen=True)
class CapRow:
    specialist: Specialist
    active: int
    fte: float
    cap: float  # the service's cap for one full-time specialist, times their FTE

    @property
    def over(self) -> bool:
        return self.active > self.cap

    @property
    def name(self) -> str:
        return self.specialist.name or self.specialist.email


def fte_of(specialist: Specialist) -> float:
    """The specialist's FTE, read defensively: missing or out of range counts as full time."""
    value = getattr(specialist, "fte", 1.0)
    return float(value) if isinstance(value, int | float) and MIN_FTE <= value <= MAX_FTE else 1.0


def capped(cap: int, fte: float) -> float:
    return round(cap * fte, 1)


def caseload_against_cap(
    db: Session, specialists: list[Specialist], cap: int, now: datetime, tz: str, people_query: Any | None = None
) -> list[CapRow]:
    """Active participants (as the weekly contact report counts them, today) per specialist."""
    today = now.astimezone(ZoneInfo(tz)).date()
    ids = [s.id for s in specialists]
    query = people_query if people_query is not None else select(Participant)
    counts: dict[int, int] = {}
    for person in db.exec(query.where(Participant.specialist_id.in_(ids))).all():  # type: ignore[attr-defined]
        if inactive_reason(person, today, today, now) is None:
            counts[person.specialist_id] = counts.get(person.specialist_id, 0) + 1
    rows = []
    for specialist in specialists:
        assert specialist.id is not None
        fte = fte_of(specialist)
        rows.append(CapRow(specialist, counts.get(specialist.id, 0), fte, capped(cap, fte)))
    return rows


def set_fte(db: Session, specialist: Specialist, fte: float) -> None:
    if not MIN_FTE <= fte <= MAX_FTE:
        raise ValueError(f"FTE must be between {MIN_FTE} and {MAX_FTE}, e.g. 0.6 for three days a week")
    specialist.fte = round(fte, 2)
    db.add(specialist)
