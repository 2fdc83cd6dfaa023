"""Who a campaign reaches: the audience filters, read a chunk at a time, and a preview of how it reads."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exists, func
from sqlmodel import Session, col, select

from assistant import engine
from assistant.contact.campaigns.text import CampaignError, for_text, merge_values, render
from assistant.db.models import (
    Appointment,
    Measure,
    MeasureStatus,
    Participant,
    Specialist,
)

AUDIENCE_KEYS = {
    "specialist",
    "cohort",
    "tag",
    "support_start_from",
    "support_start_to",
    "support_end_from",
    "support_end_to",
    "appointment_from",
    "appointment_to",
    "last_reply_before",
    "last_reply_after",
    "completed_measure",
    "not_completed_measure",
}

CHUNK = 5000  # audience rows read at a time when planning


def _day(value: Any, name: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise CampaignError(f"audience {name}: not a date like 2026-12-01") from None


def audience_query(service_id: int, audience: dict[str, Any], now: datetime, *columns: Any) -> Any:
    """Participants of this service matching the filters, never the opted out, paused or unreachable.

    Selects whole participants, or only `columns` when given."""
    unknown = set(audience) - AUDIENCE_KEYS
    if unknown:
        raise CampaignError(f"unknown audience filter(s) {sorted(unknown)}")
    query: Any = (sa.select(*columns) if columns else select(Participant)).where(
        col(Participant.service_id) == service_id,
        col(Participant.opted_out).is_(False),
        col(Participant.paused).is_(False),
        col(Participant.unreachable).is_(False),
        col(Participant.sms_consent).is_(True),
    )
    if "specialist" in audience:
        query = query.join(Specialist, col(Specialist.id) == Participant.specialist_id).where(
            Specialist.email == str(audience["specialist"]).lower()
        )
    if "cohort" in audience:
        if audience["cohort"] not in ("out_of_work", "in_work"):
            raise CampaignError("audience cohort must be out_of_work or in_work")
        query = query.where(Participant.cohort == audience["cohort"])
    for key, column, compare in (
        ("support_start_from", Participant.support_started_on, "ge"),
        ("support_start_to", Participant.support_started_on, "le"),
        ("support_end_from", Participant.support_ends_on, "ge"),
        ("support_end_to", Participant.support_ends_on, "le"),
    ):
        if key in audience:
            day = _day(audience[key], key)
            query = query.where(col(column) >= day if compare == "ge" else col(column) <= day)
    if "last_reply_before" in audience:
        query = query.where(col(Participant.last_inbound_at) < _moment(audience["last_reply_before"]))
    if "last_reply_after" in audience:
        query = query.where(col(Participant.last_inbound_at) > _moment(audience["last_reply_after"]))
    if "appointment_from" in audience or "appointment_to" in audience:
        start = _moment(audience.get("appointment_from", now.isoformat()))
        end = _moment(audience.get("appointment_to", (now + timedelta(days=3650)).isoformat()))
        query = query.where(
            exists().where(
                col(Appointment.participant_id) == Participant.id,
                col(Appointment.outcome).is_(None),
                col(Appointment.starts_at) >= start,
                col(Appointment.starts_at) < end,
            )
        )
    for key, wanted in (("completed_measure", True), ("not_completed_measure", False)):
        if key in audience:
            done = exists().where(
                col(Measure.participant_id) == Participant.id,
                col(Measure.instrument) == audience[key],
                col(Measure.status) == MeasureStatus.COMPLETE,
            )
            query = query.where(done if wanted else ~done)
    return query


def _moment(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise CampaignError(f"not a date-time: {value!r}") from None
    if moment.tzinfo is None:
        raise CampaignError(f"give a timezone: {value!r}")
    return moment


def matching_chunks(
    db: Session,
    service_id: int,
    audience: dict[str, Any],
    now: datetime,
    *columns: Any,
    chunk: int | None = None,
) -> Iterator[list[Any]]:
    """The audience a chunk at a time, in id order (keyset paging), so memory stays flat
    however large it is. Rows are (id, tags, *columns)."""
    query = audience_query(service_id, audience, now, Participant.id, Participant.tags, *columns)
    tag = audience.get("tag")
    chunk = CHUNK if chunk is None else chunk
    last = 0
    while True:
        rows = db.execute(query.where(col(Participant.id) > last).order_by(col(Participant.id)).limit(chunk)).all()
        if not rows:
            return
        last = rows[-1][0]
        # Tags are a JSON list: filtered here to work the same on every database.
        yield [row for row in rows if tag is None or tag in (row[1] or [])]


def count_matching(db: Session, service_id: int, audience: dict[str, Any], now: datetime) -> int:
    if "tag" not in audience:
        counted = audience_query(service_id, audience, now, Participant.id).subquery()
        return int(db.execute(sa.select(func.count()).select_from(counted)).scalar_one())
    return sum(len(rows) for rows in matching_chunks(db, service_id, audience, now))


def matching(
    db: Session, service_id: int, audience: dict[str, Any], now: datetime, limit: int | None = None
) -> list[Participant]:
    """Whole participants in the audience (up to `limit`): for samples and small groups."""
    people: list[Participant] = []
    for rows in matching_chunks(db, service_id, audience, now, Participant, chunk=min(limit or CHUNK, CHUNK)):
        people += [row[2] for row in rows]
        if limit is not None and len(people) >= limit:
            return people[:limit]
    return people


@dataclass
class Preview:
    count: int
    sample: list[dict[str, Any]] = field(default_factory=list)


def preview(db: Session, service_id: int, text: str, audience: dict[str, Any], now: datetime, size: int = 3) -> Preview:
    audience = for_text(text, audience, now)
    sample = []
    for person in matching(db, service_id, audience, now, limit=size):
        body = render(text, merge_values(db, person, now)) if text else ""
        sample.append(
            {
                "participant": person.external_id,
                "first_name": person.first_name,
                "body": body,
                "segments": engine.segment_count(body) if body else 0,
                "gsm7": engine.is_gsm7(body),
            }
        )
    return Preview(count=count_matching(db, service_id, audience, now), sample=sample)
