"""The journey in figures: days from referral to first contact, first reply and start; job
outcomes and sustainment. Read by the outcomes report and printed by `assistant journey-report`.

A missing date stays missing (None), never 0: someone never contacted is not "contacted in 0 days".
First contact is the first text that reached the provider (sent or delivered) or the first
contact the specialist logged (a call, a meeting), whichever came first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from assistant.contact.work import counts_as_outcome
from assistant.db.models import ContactLog, JobStart, Message, MessageStatus, Participant

CONTACTED = (MessageStatus.SENT, MessageStatus.DELIVERED)


@dataclass
class JourneyRow:
    participant_id: int
    external_id: str
    referral_date: date | None
    referral_source: str | None
    days_to_first_contact: int | None
    days_to_first_reply: int | None
    days_to_start: int | None
    exit_reason: str | None
    job_outcomes: int = 0
    sustained: dict[str, str] = field(default_factory=dict)  # weeks -> answer, of the latest job start


@dataclass
class JourneySummary:
    rows: list[JourneyRow]

    def median_days(self, name: str) -> float | None:
        values = [getattr(r, name) for r in self.rows if getattr(r, name) is not None]
        return median(values) if values else None

    def missing(self, name: str) -> int:
        return sum(1 for r in self.rows if r.referral_date is not None and getattr(r, name) is None)

    @property
    def job_outcomes(self) -> int:
        return sum(r.job_outcomes for r in self.rows)


def _days(referral: date | None, then: date | None) -> int | None:
    return (then - referral).days if referral is not None and then is not None else None


def _local(at: datetime | None, tz: str) -> date | None:
    return at.astimezone(ZoneInfo(tz)).date() if at is not None else None


def _firsts(db: Session, ids: list[int]) -> tuple[dict[int, datetime], dict[int, datetime], dict[int, datetime]]:
    def first(query: Any) -> dict[int, datetime]:
        return {pid: at for pid, at in db.execute(query).all() if at is not None}

    texted = first(
        sa.select(col(Message.participant_id), sa.func.min(col(Message.sent_at)))
        .where(col(Message.participant_id).in_(ids), col(Message.direction) == "out")
        .where(col(Message.status).in_(CONTACTED))
        .group_by(col(Message.participant_id))
    )
    logged = first(
        sa.select(col(ContactLog.participant_id), sa.func.min(col(ContactLog.at)))
        .where(col(ContactLog.participant_id).in_(ids))
        .group_by(col(ContactLog.participant_id))
    )
    replied = first(
        sa.select(col(Message.participant_id), sa.func.min(col(Message.at)))
        .where(col(Message.participant_id).in_(ids), col(Message.direction) == "in")
        .group_by(col(Message.participant_id))
    )
    return texted, logged, replied


def journey_rows(db: Session, service_id: int) -> JourneySummary:
    people = db.exec(
        select(Participant)
        .where(Participant.service_id == service_id, col(Participant.erased_at).is_(None))
        .order_by(col(Participant.external_id))
    ).all()
    ids = [p.id for p in people if p.id is not None]
    texted, logged, replied = _firsts(db, ids)
    jobs: dict[int, list[JobStart]] = {}
    for job in db.exec(select(JobStart).where(col(JobStart.participant_id).in_(ids)).order_by(col(JobStart.id))):
        jobs.setdefault(job.participant_id, []).append(job)
    rows = []
    for p in people:
        assert p.id is not None
        contacts = [at for at in (texted.get(p.id), logged.get(p.id)) if at is not None]
        theirs = jobs.get(p.id, [])
        rows.append(
            JourneyRow(
                participant_id=p.id,
                external_id=p.external_id,
                referral_date=p.referral_date,
                referral_source=p.referral_source,
                days_to_first_contact=_days(p.referral_date, _local(min(contacts), p.timezone) if contacts else None),
                days_to_first_reply=_days(p.referral_date, _local(replied.get(p.id), p.timezone)),
                days_to_start=_days(p.referral_date, p.support_started_on),
                exit_reason=p.exit_reason,
                job_outcomes=sum(1 for j in theirs if counts_as_outcome(j)),
                sustained=dict(theirs[-1].sustainment) if theirs else {},
            )
        )
    return JourneySummary(rows)
