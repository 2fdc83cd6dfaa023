"""The clock's campaign job: turn due copies into outbox texts (or started flows), a batch at a time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlmodel import Session, col, select

from assistant.care.quiet import next_allowed
from assistant.contact import policy as contact_policy
from assistant.contact.campaigns.text import merge_fields, next_appointments, render
from assistant.contact.support_end import ended_among
from assistant.db.driver import Prepared
from assistant.db.models import (
    Campaign,
    CampaignRecipient,
    CampaignStatus,
    FlowSession,
    Participant,
    RecipientStatus,
    SessionStatus,
    Specialist,
    specialist_has_left,
    table,
)
from assistant.db.service_settings import ServiceSettings, for_service
from assistant.db.units import among, lock_participant, transaction
from assistant.outbox.writer import queue_many, text_row
from assistant.runtime import Runtime
from assistant.sessions.lifecycle import questionnaire_under_way, start_expiring_flow

BATCH = 1000


class _Person(NamedTuple):
    """The columns queueing needs: a campaign batch never loads whole participant records."""

    id: int
    service_id: int
    specialist_id: int | None
    first_name: str
    phone: str
    timezone: str
    allowed_from: str | None
    allowed_until: str | None
    contact_windows: str | None
    reachable: bool


_PERSON_COLUMNS: tuple[Any, ...] = (
    Participant.id,
    Participant.service_id,
    Participant.specialist_id,
    Participant.first_name,
    Participant.phone,
    Participant.timezone,
    Participant.allowed_from,
    Participant.allowed_until,
    Participant.contact_windows,
    sa.and_(
        col(Participant.opted_out).is_(False),
        col(Participant.paused).is_(False),
        col(Participant.unreachable).is_(False),
        col(Participant.sms_consent).is_(True),
    ),
)


class _Claimed(NamedTuple):
    id: int
    participant_id: int
    campaign_id: int
    due_at: datetime | None


_RECIPIENTS = CampaignRecipient.__table__  # type: ignore[attr-defined]
_CAMPAIGNS = table(Campaign)
_SET_RECIPIENT = (
    sa.update(_RECIPIENTS)
    .where(_RECIPIENTS.c.id == sa.bindparam("b_id"))
    .values(
        status=sa.bindparam("b_status"),
        reason=sa.bindparam("b_reason"),
        due_at=sa.bindparam("b_due_at"),
        message_id=sa.bindparam("b_message_id"),
    )
)


# Asked on every tick, so built once: the due copies of running campaigns, oldest first.
_CLAIM_DUE = (
    sa.select(_RECIPIENTS.c.id, _RECIPIENTS.c.participant_id, _RECIPIENTS.c.campaign_id, _RECIPIENTS.c.due_at)
    .join(_CAMPAIGNS, _CAMPAIGNS.c.id == _RECIPIENTS.c.campaign_id)
    .where(
        _CAMPAIGNS.c.status == CampaignStatus.SCHEDULED,
        _RECIPIENTS.c.status == RecipientStatus.PLANNED,
        _RECIPIENTS.c.due_at <= sa.bindparam("now", type_=_RECIPIENTS.c.due_at.type),
    )
    .order_by(_RECIPIENTS.c.due_at, _RECIPIENTS.c.id)
    .limit(sa.bindparam("batch", type_=sa.Integer))
)
_CLAIM_DUE_SKIP_LOCKED = _CLAIM_DUE.with_for_update(of=_RECIPIENTS, skip_locked=True)
_ANY_DUE = Prepared(_CLAIM_DUE)


def run_due(rt: Runtime, now: datetime) -> int:
    """Turn due copies of running campaigns into outbox messages, a batch per transaction.

    Each batch claims its recipient rows (FOR UPDATE SKIP LOCKED on PostgreSQL), writes
    their messages and marks them queued in one commit: a crash loses or repeats nothing.
    """
    if _ANY_DUE.read(rt.engine, {"now": now, "batch": 1}).first() is None:  # outside any unit of work
        _finish_done(rt, now)  # on most ticks no copy is due
        return 0
    queued = 0
    while True:
        with transaction(rt.engine) as db:
            postgres = db.get_bind().dialect.name == "postgresql"
            claim = _CLAIM_DUE_SKIP_LOCKED if postgres else _CLAIM_DUE
            batch = [_Claimed(*row) for row in db.execute(claim, {"now": now, "batch": BATCH}).all()]
            if not batch:
                break
            queued += _queue_batch(db, rt, batch, now)
    _finish_done(rt, now)
    return queued


@dataclass
class _Batch:
    """What queueing a batch needs, read once for the whole batch: a query each, not one a person."""

    people: dict[int, _Person]
    waiting: dict[int, tuple[str, str | None, datetime | None]]
    specialists: dict[int | None, Specialist]
    chosen: dict[int | None, Campaign]
    appointments: dict[int, datetime]
    held: set[int]
    ended: set[int]
    settings: dict[int, ServiceSettings] = field(default_factory=dict)
    windows: dict[tuple[Any, ...], datetime] = field(default_factory=dict)  # same zone and hours, same answer

    def allowed(self, db: Session, person: _Person, now: datetime) -> datetime:
        """When this person may next be texted (now, or later); kept for others with the same hours."""
        if person.service_id not in self.settings:
            self.settings[person.service_id] = for_service(db, person.service_id)
        window = (person.service_id, person.timezone, person.allowed_from, person.allowed_until, person.contact_windows)
        if window not in self.windows:
            self.windows[window] = next_allowed(now, person, self.settings[person.service_id])
        return self.windows[window]


def _read_batch(db: Session, batch: list[_Claimed], now: datetime) -> _Batch:
    ids = [r.participant_id for r in batch]
    people = {
        row[0]: _Person(*row)
        for row in db.execute(sa.select(*_PERSON_COLUMNS).where(among(db, Participant.id, ids))).all()
    }
    waiting = {
        participant_id: (flow, question, wait_until)
        for participant_id, flow, question, wait_until in db.execute(
            sa.select(
                col(FlowSession.participant_id),
                col(FlowSession.flow),
                col(FlowSession.question),
                col(FlowSession.wait_until),
            ).where(among(db, FlowSession.participant_id, ids), col(FlowSession.status) == SessionStatus.WAITING)
        ).all()
    }
    specialists = {
        s.id: s
        for s in db.exec(
            select(Specialist).where(
                col(Specialist.id).in_({p.specialist_id for p in people.values()}),
                ~specialist_has_left(col(Specialist.id)),  # a text is never signed by someone who left
            )
        ).all()
    }
    chosen = {
        c.id: c for c in db.exec(select(Campaign).where(col(Campaign.id).in_({r.campaign_id for r in batch}))).all()
    }
    appointments = next_appointments(db, ids, now) if any("appointment_time" in c.text for c in chosen.values()) else {}
    held = contact_policy.held_for_a_person(db, ids, "campaign")
    return _Batch(people, waiting, specialists, chosen, appointments, held, ended_among(db, ids, now))


def _queue_batch(db: Session, rt: Runtime, batch: list[_Claimed], now: datetime) -> int:
    """Decide every claimed copy, write the batch's texts at once and every copy's new state at once.
    Returns how many texts were queued and flows started."""
    found = _read_batch(db, batch, now)
    messages: list[dict[str, Any]] = []
    texted: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    started = 0
    for recipient in batch:
        change = {
            "b_id": recipient.id,
            "b_status": RecipientStatus.PLANNED,
            "b_reason": None,
            "b_due_at": recipient.due_at,
            "b_message_id": None,
        }
        changes.append(change)
        row = _decide(db, rt, found, recipient, change, now)
        if row is not None:
            messages.append(row)
            texted.append(change)
        elif change["b_status"] == RecipientStatus.SENT:
            started += 1
    if messages:
        message_ids = queue_many(db, messages)
        for change, message_id in zip(texted, message_ids, strict=True):
            change["b_status"], change["b_message_id"] = RecipientStatus.QUEUED, message_id
    db.execute(_SET_RECIPIENT, changes)
    return len(messages) + started


def _decide(
    db: Session, rt: Runtime, found: _Batch, recipient: _Claimed, change: dict[str, Any], now: datetime
) -> dict[str, Any] | None:
    """One copy: withdrawn, put off, its flow started (each noted in `change`), or its text to write."""
    person, campaign = found.people[recipient.participant_id], found.chosen[recipient.campaign_id]
    if not person.reachable:
        change["b_status"] = RecipientStatus.WITHDRAWN
        change["b_reason"] = "opted out, paused, unreachable or no consent at send time"
        return None
    if recipient.participant_id in found.ended:
        change["b_status"], change["b_reason"] = RecipientStatus.WITHDRAWN, "support ended"
        return None
    allowed = found.allowed(db, person, now)
    busy = found.waiting.get(recipient.participant_id)
    if recipient.participant_id in found.held:
        change["b_due_at"] = now + contact_policy.HOLD_RECHECK  # a person speaks first after a crisis
    elif allowed > now:
        change["b_due_at"] = allowed
    elif busy is not None and (questionnaire_under_way(busy[0], busy[1]) or campaign.flow):
        # Never interrupt a questionnaire (nor start a flow over another): wait until it ends.
        change["b_due_at"] = max(busy[2] or now, now) + timedelta(minutes=1)
    elif campaign.flow:
        _start_flow(db, rt, recipient.participant_id, campaign.flow, found.settings[person.service_id], change, now)
    else:
        values = merge_fields(
            person.first_name,
            person.timezone,
            found.specialists.get(person.specialist_id),
            found.appointments.get(recipient.participant_id),
        )
        return text_row(
            phone=person.phone,
            body=render(campaign.text, values),
            key=f"campaign/{campaign.id}",
            now=now,
            participant_id=person.id,
            valid_for=timedelta(hours=24),
            automated=True,
        )
    return None


def _start_flow(
    db: Session,
    rt: Runtime,
    participant_id: int,
    name: str,
    settings: ServiceSettings,
    change: dict[str, Any],
    now: datetime,
) -> None:
    """Start the campaign's flow under the person's lock; the copy fails if the flow has gone."""
    flow = rt.flows.get(name)
    if flow is None:
        change["b_status"], change["b_reason"] = RecipientStatus.FAILED, f"flow {name} is not available"
        return
    lock_participant(db, participant_id)
    participant = db.get(Participant, participant_id)
    assert participant is not None
    expires_after = timedelta(hours=settings.questionnaire_expires_hours)
    start_expiring_flow(db, rt, participant, flow, now, expires_after=expires_after)
    change["b_status"] = RecipientStatus.SENT


# Running campaigns (not relative to appointments) with no copy left to queue: asked every tick.
_ALL_QUEUED = sa.select(_CAMPAIGNS.c.id).where(
    _CAMPAIGNS.c.status == CampaignStatus.SCHEDULED,
    _CAMPAIGNS.c.relative.is_(None),
    ~sa.select(_RECIPIENTS.c.id)
    .where(
        _RECIPIENTS.c.campaign_id == _CAMPAIGNS.c.id,
        _RECIPIENTS.c.status == RecipientStatus.PLANNED,
    )
    .exists(),
)


_ANY_ALL_QUEUED = Prepared(_ALL_QUEUED.limit(1))


def _finish_done(rt: Runtime, now: datetime) -> None:
    if _ANY_ALL_QUEUED.read(rt.engine).first() is None:
        return  # the usual case, asked on every tick: no unit of work
    with transaction(rt.engine) as db:
        for campaign_id in db.execute(_ALL_QUEUED).scalars().all():
            campaign = db.get(Campaign, campaign_id)
            assert campaign is not None
            campaign.status, campaign.updated_at = CampaignStatus.DONE, now
            db.add(campaign)
