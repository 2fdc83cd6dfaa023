"""Campaigns: a service texts a group, safely and once.

Planning writes one CampaignRecipient per participant (unique per campaign), each
with its own due time; the clock turns due recipients into outbox messages under
the participant's lock, honouring quiet hours, bank holidays, any open
questionnaire, and the contact policy's hold while a crisis flag is unacknowledged.
Re-running, editing or crashing can never send anyone the same campaign twice: the
recipient row is claimed in the same transaction that queues its message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import exists, func
from sqlmodel import Session, col, select

from assistant import engine
from assistant.care.flags import raise_flag
from assistant.care.quiet import next_allowed
from assistant.contact import policy as contact_policy
from assistant.contact.appointments import day_and_time
from assistant.contact.support_end import ended_among
from assistant.content.wording import lock_screen_words, pressure_phrases
from assistant.db.models import (
    Appointment,
    Campaign,
    CampaignRecipient,
    FlowSession,
    Measure,
    Message,
    Participant,
    Service,
    Specialist,
    table,
)
from assistant.db.service_settings import ServiceSettings, for_service
from assistant.db.units import lock_participant, transaction
from assistant.outbox.writer import queue_many, specialist_first_name, text_row, withdraw_outbox
from assistant.runtime import Runtime
from assistant.sessions.lifecycle import questionnaire_under_way, start_expiring_flow
from assistant.timing import local_at, parse_hhmm

MERGE = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
ANY_BRACES = re.compile(r"\{[{%#]|[}%#]\}")
MERGE_FIELDS = ("first_name", "specialist_name", "appointment_time")
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
RELATIVE_FIELDS = {"support_end": "support_ends_on", "support_start": "support_started_on"}
BATCH = 1000
CHUNK = 5000  # audience rows read at a time when planning


class CampaignError(ValueError):
    """A campaign refused before anything is queued, with the reason."""


def templates(messages_dir: Path, locale: str = "en-GB") -> dict[str, str]:
    """Ready-made campaign texts from messages/<locale>/campaign/, by name: a starting point to edit."""
    return {
        path.stem: path.read_text(encoding="utf-8").strip()
        for path in sorted((messages_dir / locale / "campaign").glob("*.txt"))
    }


def template_text(messages_dir: Path, name: str) -> str:
    found = templates(messages_dir)
    if name not in found:
        raise CampaignError(f"no campaign template {name!r}: there are {', '.join(found) or 'none'}")
    return found[name]


def render(text: str, values: dict[str, Any]) -> str:
    """Fill {{ merge fields }}: plain substitution, never template code."""
    return MERGE.sub(lambda m: str(values[m.group(1)]), text)


def check_text(text: str, limit: int) -> list[str]:
    problems = []
    if not text.strip():
        problems.append("the message is empty")
    unknown = sorted({m for m in MERGE.findall(text) if m not in MERGE_FIELDS})
    if unknown:
        problems.append(f"unknown merge field(s) {unknown}: use {', '.join(MERGE_FIELDS)}")
    if ANY_BRACES.search(MERGE.sub("", text)):
        problems.append("only {{ first_name }}-style merge fields are allowed, no other template code")
    sample = (
        render(
            MERGE.sub(lambda m: "{{ " + m.group(1) + " }}" if m.group(1) in MERGE_FIELDS else "", text),
            {
                "first_name": "Christabella",
                "specialist_name": "Maximilianus",
                "appointment_time": "Wed 25 Nov at 10:30",
            },
        )
        if not unknown
        else text
    )
    if engine.segment_count(sample) > limit:
        problems.append(f"the message takes {engine.segment_count(sample)} segments; the service allows {limit}")
    # A campaign reaches many phones at once: nothing that gives away the service on a lock
    # screen, and nothing that reads like compliance or pressure.
    if words := lock_screen_words(sample):
        problems.append(f"it mentions {', '.join(words)}, which would show on lock screens")
    if phrases := pressure_phrases(sample):
        quoted = ", ".join(f"'{p}'" for p in phrases)
        problems.append(f"{quoted} reads like pressure; taking part is voluntary")
    return problems


def for_text(text: str, audience: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A text naming {{ appointment_time }} goes only to people with an appointment coming up:
    "we're meeting on your next appointment" would make no sense to anyone else."""
    if "appointment_time" in MERGE.findall(text) and not {"appointment_from", "appointment_to"} & set(audience):
        return {**audience, "appointment_from": now.isoformat()}
    return audience


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
                col(Measure.status) == "complete",
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
    chunk: int = CHUNK,
) -> Iterator[list[Any]]:
    """The audience a chunk at a time, in id order (keyset paging), so memory stays flat
    however large it is. Rows are (id, tags, *columns)."""
    query = audience_query(service_id, audience, now, Participant.id, Participant.tags, *columns)
    tag = audience.get("tag")
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


def merge_values(db: Session, participant: Participant, now: datetime) -> dict[str, Any]:
    """One person's merge fields, as queueing fills them."""
    assert participant.id is not None
    return _merge(
        participant.first_name,
        participant.timezone,
        db.get(Specialist, participant.specialist_id),
        _next_appointments(db, [participant.id], now).get(participant.id),
    )


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


def due_for(participant: Participant, campaign: Campaign) -> datetime | None:
    """When this participant's copy is due: the campaign's time, or relative to a date on their record."""
    if campaign.relative:
        day = getattr(participant, RELATIVE_FIELDS[campaign.relative["field"]])
        return _due_relative(campaign, day, participant.timezone)
    return campaign.send_at


def _due_relative(campaign: Campaign, day: date | None, timezone: str) -> datetime | None:
    assert campaign.relative is not None
    if day is None:
        return None
    return local_at(day + timedelta(days=int(campaign.relative["days"])), parse_hhmm(campaign.relative["at"]), timezone)


def create(
    db: Session,
    *,
    service_id: int,
    name: str,
    text: str,
    audience: dict[str, Any],
    created_by: str,
    now: datetime,
    send_at: datetime | None = None,
    relative: dict[str, Any] | None = None,
    reply_keyword: str | None = None,
    flow: str | None = None,
    flows: Any = None,
) -> Campaign:
    """Validate everything, then plan one recipient per participant. Refuses before queueing anything."""
    service = db.get(Service, service_id)
    if service is None:
        raise CampaignError("no such service")
    settings = ServiceSettings.from_json(service.settings)
    problems = []
    if not name.strip() or len(name) > 200 or not name.isprintable():
        problems.append("give the campaign a name of up to 200 characters, on one line")
    if flow:
        if flows is not None and flows.get(flow) is None and not flow.startswith("questionnaire_"):
            problems.append(f"unknown flow {flow!r}")
    else:
        problems += check_text(text, settings.campaign_segment_limit)
    if relative:
        if relative.get("field") not in RELATIVE_FIELDS:
            problems.append(f"relative dates can be {sorted(RELATIVE_FIELDS)}")
        try:
            parse_hhmm(str(relative.get("at", "")))
            int(relative.get("days", "x"))
        except ValueError:
            problems.append("a relative send needs days (e.g. -28) and a local time (e.g. 10:00)")
    elif send_at is None:
        problems.append("say when: a time, or relative to a date on each record")
    elif send_at < now - timedelta(minutes=1):
        problems.append("the send time is in the past")
    keyword = engine.normalise(reply_keyword) if reply_keyword else None
    if reply_keyword is not None and (not reply_keyword.isalnum() or not keyword or len(keyword) > 32):
        problems.append("the reply keyword must be one word of letters and numbers, up to 32")
    if reply_keyword and engine.keyword(reply_keyword) in ("opt_out", "help"):
        problems.append(f"{reply_keyword.upper()} is reserved for stopping texts or asking for help")
    if problems:
        raise CampaignError("; ".join(problems))
    if not flow:
        audience = for_text(text, audience, now)
    if count_matching(db, service_id, audience, now) == 0:
        raise CampaignError("the audience is empty")
    campaign = Campaign(
        service_id=service_id,
        name=name.strip(),
        text=text,
        flow=flow,
        audience=audience,
        send_at=send_at,
        relative=relative,
        reply_keyword=keyword or None,
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
    db.add(campaign)
    db.flush()
    plan(db, campaign, now)
    return campaign


def plan(db: Session, campaign: Campaign, now: datetime) -> int:
    """Add a recipient for everyone in the audience not yet planned (a re-run adds only newcomers).

    Streams the audience in chunks: time and memory grow linearly with its size."""
    assert campaign.id is not None
    audience = dict(campaign.audience or {})
    columns = (Participant.timezone, Participant.support_started_on, Participant.support_ends_on)
    relative = RELATIVE_FIELDS[campaign.relative["field"]] if campaign.relative else None
    planned = 0
    for rows in matching_chunks(db, campaign.service_id, audience, now, *columns):
        if not rows:
            continue
        # Who in this id range is already planned (a re-run): one range scan of the unique index.
        have = set(
            db.exec(
                select(CampaignRecipient.participant_id).where(
                    CampaignRecipient.campaign_id == campaign.id,
                    col(CampaignRecipient.participant_id) >= rows[0][0],
                    col(CampaignRecipient.participant_id) <= rows[-1][0],
                )
            ).all()
        )
        recipients = []
        for participant_id, _tags, timezone, started, ends in rows:
            if participant_id in have:
                continue
            if relative is None:
                due = campaign.send_at
            else:
                due = _due_relative(campaign, ends if relative == "support_ends_on" else started, timezone)
            if due is not None:
                recipients.append(
                    {"campaign_id": campaign.id, "participant_id": participant_id, "status": "planned", "due_at": due}
                )
        if recipients:
            db.execute(CampaignRecipient.__table__.insert(), recipients)  # type: ignore[attr-defined]
            planned += len(recipients)
    return planned


def replan_for(db: Session, participant: Participant, now: datetime) -> None:
    """A date on the record changed: move this person's relative campaign copies that have not gone."""
    for recipient in db.exec(
        select(CampaignRecipient).where(
            CampaignRecipient.participant_id == participant.id, CampaignRecipient.status == "planned"
        )
    ).all():
        campaign = db.get(Campaign, recipient.campaign_id)
        if campaign and campaign.relative:
            recipient.due_at = due_for(participant, campaign)
            if recipient.due_at is None:
                recipient.status, recipient.reason = "withdrawn", "date removed"
            db.add(recipient)


def set_status(db: Session, campaign: Campaign, status: str, now: datetime) -> int:
    """Pause, resume or cancel. Cancelling withdraws every copy not yet gone (and its queued text)."""
    if status not in ("paused", "scheduled", "cancelled"):
        raise CampaignError("a campaign can be paused, resumed or cancelled")
    if campaign.status in ("cancelled", "done"):
        raise CampaignError(f"the campaign is already {campaign.status}")
    campaign.status, campaign.updated_at = status, now
    db.add(campaign)
    return _withdraw_copies(db, campaign) if status == "cancelled" else 0


def _withdraw_copies(db: Session, campaign: Campaign) -> int:
    """Every copy not yet gone is withdrawn, and its queued text with it; a copy whose text has
    already left (or gone another way) stays counted as sent."""
    rows = db.execute(
        sa.select(CampaignRecipient, col(Message.status))
        .outerjoin(Message, col(Message.id) == CampaignRecipient.message_id)
        .where(
            col(CampaignRecipient.campaign_id) == campaign.id, col(CampaignRecipient.status).in_(("planned", "queued"))
        )
    ).all()
    withdrawn = [r for r, message_status in rows if r.message_id is None or message_status == "queued"]
    withdraw_outbox(db, reason="campaign cancelled", message_ids=[r.message_id for r in withdrawn if r.message_id])
    for recipient in withdrawn:
        recipient.status, recipient.reason = "withdrawn", "campaign cancelled"
        db.add(recipient)
    return len(withdrawn)


def _next_appointments(db: Session, participant_ids: list[int], now: datetime) -> dict[int, datetime]:
    found: dict[int, datetime] = {}
    for participant_id, starts_at in db.execute(
        sa.select(col(Appointment.participant_id), col(Appointment.starts_at))
        .where(
            col(Appointment.participant_id).in_(participant_ids),
            col(Appointment.outcome).is_(None),
            col(Appointment.starts_at) > now,
        )
        .order_by(col(Appointment.starts_at))
    ).all():
        found.setdefault(participant_id, starts_at)
    return found


def _merge(
    first_name: str, timezone: str, specialist: Specialist | None, appointment: datetime | None
) -> dict[str, Any]:
    return {
        "first_name": first_name,
        "specialist_name": specialist_first_name(specialist),
        "appointment_time": day_and_time(appointment, timezone) if appointment else "your next appointment",
    }


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
        _CAMPAIGNS.c.status == "scheduled",
        _RECIPIENTS.c.status == "planned",
        _RECIPIENTS.c.due_at <= sa.bindparam("now", type_=_RECIPIENTS.c.due_at.type),
    )
    .order_by(_RECIPIENTS.c.due_at, _RECIPIENTS.c.id)
    .limit(BATCH)
)
_CLAIM_DUE_SKIP_LOCKED = _CLAIM_DUE.with_for_update(of=_RECIPIENTS, skip_locked=True)


def run_due(rt: Runtime, now: datetime) -> int:
    """Turn due copies of running campaigns into outbox messages, a batch per transaction.

    Each batch claims its recipient rows (FOR UPDATE SKIP LOCKED on PostgreSQL), writes
    their messages and marks them queued in one commit: a crash loses or repeats nothing.
    """
    queued = 0
    while True:
        with transaction(rt.engine) as db:
            postgres = db.get_bind().dialect.name == "postgresql"
            claim = _CLAIM_DUE_SKIP_LOCKED if postgres else _CLAIM_DUE
            batch = [_Claimed(*row) for row in db.execute(claim, {"now": now}).all()]
            if not batch:
                break
            queued += _queue_batch(db, rt, batch, now)
    _finish_done(rt, now)
    return queued


def _queue_batch(db: Session, rt: Runtime, batch: list[_Claimed], now: datetime) -> int:
    ids = [r.participant_id for r in batch]
    people = {
        row[0]: _Person(*row)
        for row in db.execute(sa.select(*_PERSON_COLUMNS).where(col(Participant.id).in_(ids))).all()
    }
    waiting = {
        participant_id: (flow, question, wait_until)
        for participant_id, flow, question, wait_until in db.execute(
            sa.select(
                col(FlowSession.participant_id),
                col(FlowSession.flow),
                col(FlowSession.question),
                col(FlowSession.wait_until),
            ).where(col(FlowSession.participant_id).in_(ids), col(FlowSession.status) == "waiting")
        ).all()
    }
    specialists = {
        s.id: s
        for s in db.exec(
            select(Specialist).where(col(Specialist.id).in_({p.specialist_id for p in people.values()}))
        ).all()
    }
    chosen = {
        c.id: c for c in db.exec(select(Campaign).where(col(Campaign.id).in_({r.campaign_id for r in batch}))).all()
    }
    appointments = (
        _next_appointments(db, ids, now) if any("appointment_time" in c.text for c in chosen.values()) else {}
    )
    held = contact_policy.held_for_crisis(db, ids, "campaign")
    ended = ended_among(db, ids, now)
    settings: dict[int, ServiceSettings] = {}
    windows: dict[tuple[Any, ...], datetime] = {}  # people with the same zone and hours share an answer
    messages: list[dict[str, Any]] = []
    texted: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    started = 0
    for recipient in batch:
        person, campaign = people[recipient.participant_id], chosen[recipient.campaign_id]
        change = {
            "b_id": recipient.id,
            "b_status": "planned",
            "b_reason": None,
            "b_due_at": recipient.due_at,
            "b_message_id": None,
        }
        changes.append(change)
        if not person.reachable:
            change["b_status"] = "withdrawn"
            change["b_reason"] = "opted out, paused, unreachable or no consent at send time"
            continue
        if recipient.participant_id in ended:
            change["b_status"], change["b_reason"] = "withdrawn", "support ended"
            continue
        if person.service_id not in settings:
            settings[person.service_id] = for_service(db, person.service_id)
        window = (person.service_id, person.timezone, person.allowed_from, person.allowed_until, person.contact_windows)
        if window not in windows:
            windows[window] = next_allowed(now, person, settings[person.service_id])
        allowed = windows[window]
        busy = waiting.get(recipient.participant_id)
        if recipient.participant_id in held:
            change["b_due_at"] = now + contact_policy.HOLD_RECHECK  # a person speaks first after a crisis
        elif allowed > now:
            change["b_due_at"] = allowed
        elif busy is not None and (questionnaire_under_way(busy[0], busy[1]) or campaign.flow):
            # Never interrupt a questionnaire (nor start a flow over another): wait until it ends.
            change["b_due_at"] = max(busy[2] or now, now) + timedelta(minutes=1)
        elif campaign.flow:
            flow = rt.flows.get(campaign.flow)
            if flow is None:
                change["b_status"], change["b_reason"] = "failed", f"flow {campaign.flow} is not available"
                continue
            lock_participant(db, recipient.participant_id)
            participant = db.get(Participant, recipient.participant_id)
            assert participant is not None
            expires_after = timedelta(hours=settings[person.service_id].questionnaire_expires_hours)
            start_expiring_flow(db, rt, participant, flow, now, expires_after=expires_after)
            change["b_status"] = "sent"
            started += 1
        else:
            values = _merge(
                person.first_name,
                person.timezone,
                specialists.get(person.specialist_id),
                appointments.get(recipient.participant_id),
            )
            body = render(campaign.text, values)
            messages.append(
                text_row(
                    phone=person.phone,
                    body=body,
                    key=f"campaign/{campaign.id}",
                    now=now,
                    participant_id=person.id,
                    valid_for=timedelta(hours=24),
                    automated=True,
                )
            )
            texted.append(change)
    if messages:
        message_ids = queue_many(db, messages)
        for change, message_id in zip(texted, message_ids, strict=True):
            change["b_status"], change["b_message_id"] = "queued", message_id
    db.execute(_SET_RECIPIENT, changes)
    return len(messages) + started


# Running campaigns (not relative to appointments) with no copy left to queue: asked every tick.
_ALL_QUEUED = sa.select(_CAMPAIGNS.c.id).where(
    _CAMPAIGNS.c.status == "scheduled",
    _CAMPAIGNS.c.relative.is_(None),
    ~sa.select(_RECIPIENTS.c.id)
    .where(
        _RECIPIENTS.c.campaign_id == _CAMPAIGNS.c.id,
        _RECIPIENTS.c.status == "planned",
    )
    .exists(),
)


def _finish_done(rt: Runtime, now: datetime) -> None:
    with transaction(rt.engine) as db:
        for campaign_id in db.execute(_ALL_QUEUED).scalars().all():
            campaign = db.get(Campaign, campaign_id)
            assert campaign is not None
            campaign.status, campaign.updated_at = "done", now
            db.add(campaign)


_recipient, _campaign, _message = table(CampaignRecipient), table(Campaign), table(Message)
_RECENT_CAMPAIGN = (
    sa.select(
        _recipient.c.id.label("recipient_id"),
        _campaign.c.id.label("campaign_id"),
        _message.c.id.label("message_id"),
    )
    .select_from(_recipient)
    .join(_campaign, _campaign.c.id == _recipient.c.campaign_id)
    .join(_message, _message.c.id == _recipient.c.message_id)
    .where(
        _recipient.c.participant_id == sa.bindparam("participant_id"),
        _campaign.c.reply_keyword.is_not(None),
        _message.c.at > sa.bindparam("since", type_=_message.c.at.type),
    )
    .order_by(_message.c.id.desc())
    .limit(1)
)


def recent_campaign(
    db: Session, participant_id: int, now: datetime, within: timedelta = timedelta(days=14)
) -> tuple[CampaignRecipient, Campaign, Message] | None:
    """The last campaign text this person got, if it asked for a reply keyword and is recent."""
    # Asked for every inbound text and nearly always empty: ids first, whole rows only when found.
    found = db.execute(_RECENT_CAMPAIGN, {"participant_id": participant_id, "since": now - within}).first()
    if found is None:
        return None
    recipient = db.get(CampaignRecipient, found.recipient_id)
    campaign = db.get(Campaign, found.campaign_id)
    sent = db.get(Message, found.message_id)
    assert recipient is not None and campaign is not None and sent is not None
    return recipient, campaign, sent


def handle_reply(
    db: Session, participant: Participant, inbound: Message, waiting_since: datetime | None, now: datetime
) -> bool:
    """YES to the event invitation is not YES to an appointment reminder: whichever asked last gets it."""
    assert participant.id is not None
    found = recent_campaign(db, participant.id, now)
    if found is None:
        return False
    recipient, campaign, sent = found
    if waiting_since is not None and sent.at is not None and waiting_since > sent.at:
        return False  # a flow asked its question after the campaign: the reply is the flow's
    if engine.normalise(inbound.body) != engine.normalise(campaign.reply_keyword or ""):
        return False
    recipient.status, recipient.replied_at = "replied", now
    db.add(recipient)
    raise_flag(
        db,
        participant,
        kind="campaign_interest",
        severity="info",
        reason=f"Replied {(campaign.reply_keyword or '').upper()} to '{campaign.name}'",
        now=now,
        evidence={"campaign_id": campaign.id, "message_id": inbound.id},
    )
    return True


def progress(db: Session, campaign: Campaign) -> dict[str, Any]:
    """Counts per state (and who is behind each), read in one pass over the campaign's copies."""
    rows = db.execute(
        sa.select(
            col(CampaignRecipient.status),
            col(CampaignRecipient.participant_id),
            col(Message.status),
            col(Message.error_code),
            col(Message.at),
            col(Participant.opted_out),
            col(Participant.opted_out_at),
        )
        .select_from(CampaignRecipient)
        .join(Participant, col(Participant.id) == CampaignRecipient.participant_id)
        .outerjoin(Message, col(Message.id) == CampaignRecipient.message_id)
        .where(col(CampaignRecipient.campaign_id) == campaign.id)
        .order_by(col(CampaignRecipient.id))
    ).all()
    counts: dict[str, int] = {
        "planned": 0,
        "queued": 0,
        "sent": 0,
        "delivered": 0,
        "failed": 0,
        "replied": 0,
        "withdrawn": 0,
        "opted_out": 0,
    }
    people: dict[str, list[int]] = {k: [] for k in counts}
    failures: dict[str, int] = {}
    for status, participant_id, message_status, error_code, sent_at, opted_out, opted_out_at in rows:
        state = status
        if message_status in ("sent", "delivered"):
            state = message_status
        elif message_status in ("failed", "undelivered", "expired", "suppressed"):
            state = "failed"
            failures[error_code or message_status] = failures.get(error_code or message_status, 0) + 1
        if status == "replied":
            state = "replied"
        counts[state] = counts.get(state, 0) + 1
        people.setdefault(state, []).append(participant_id)
        if message_status is not None and opted_out and opted_out_at and sent_at and opted_out_at >= sent_at:
            counts["opted_out"] += 1
            people["opted_out"].append(participant_id)
    return {"counts": counts, "participants": people, "failures": failures, "total": len(rows)}
