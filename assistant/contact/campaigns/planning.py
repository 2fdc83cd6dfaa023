"""Defining a campaign: validate it, then plan one copy per participant with its own due time."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from assistant import engine
from assistant.contact.campaigns.audience import count_matching, matching_chunks
from assistant.contact.campaigns.text import CampaignError, check_text, for_text
from assistant.db.models import (
    Campaign,
    CampaignRecipient,
    Participant,
    RecipientStatus,
    Service,
)
from assistant.db.service_settings import ServiceSettings
from assistant.timing import local_at, parse_hhmm

RELATIVE_FIELDS = {"support_end": "support_ends_on", "support_start": "support_started_on"}


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
    problems = refusals(
        db,
        service_id=service_id,
        name=name,
        text=text,
        now=now,
        send_at=send_at,
        relative=relative,
        reply_keyword=reply_keyword,
        flow=flow,
        flows=flows,
    )
    if problems:
        raise CampaignError("; ".join(problems))
    keyword = engine.normalise(reply_keyword) if reply_keyword else None
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


def refusals(
    db: Session,
    *,
    service_id: int,
    name: str,
    text: str,
    now: datetime,
    send_at: datetime | None = None,
    relative: dict[str, Any] | None = None,
    reply_keyword: str | None = None,
    flow: str | None = None,
    flows: Any = None,
    when_given_only: bool = False,
) -> list[str]:
    """Everything `create` would refuse, in plain words (a preview shows the same; it may leave the
    time out, `when_given_only`, and is still told when a time it gives is refused)."""
    service = db.get(Service, service_id)
    if service is None:
        return ["no such service"]
    settings = ServiceSettings.from_json(service.settings)
    problems = []
    if not name.strip() or len(name) > 200 or not name.isprintable():
        problems.append("give the campaign a name of up to 200 characters, on one line")
    if flow:
        if flows is not None and flows.get(flow) is None and not flow.startswith("questionnaire_"):
            problems.append(f"unknown flow {flow!r}")
    else:
        problems += check_text(text, settings.campaign_segment_limit)
    if send_at is not None or relative or not when_given_only:
        problems += _when_refused(send_at, relative, now)
    return problems + _keyword_refused(reply_keyword)


def _when_refused(send_at: datetime | None, relative: dict[str, Any] | None, now: datetime) -> list[str]:
    """What is wrong with when a campaign is to go: a time to come, or a date on each record."""
    problems = []
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
    return problems


def _keyword_refused(reply_keyword: str | None) -> list[str]:
    """What is wrong with the word a campaign asks people to reply with, if it asks for one."""
    problems = []
    keyword = engine.normalise(reply_keyword) if reply_keyword else None
    if reply_keyword is not None and (not reply_keyword.isalnum() or not keyword or len(keyword) > 32):
        problems.append("the reply keyword must be one word of letters and numbers, up to 32")
    if reply_keyword and engine.keyword(reply_keyword) in ("opt_out", "help"):
        problems.append(f"{reply_keyword.upper()} is reserved for stopping texts or asking for help")
    return problems


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
                    {
                        "campaign_id": campaign.id,
                        "participant_id": participant_id,
                        "status": RecipientStatus.PLANNED,
                        "due_at": due,
                    }
                )
        if recipients:
            db.execute(CampaignRecipient.__table__.insert(), recipients)  # type: ignore[attr-defined]
            planned += len(recipients)
    return planned


def replan_for(db: Session, participant: Participant, now: datetime) -> None:
    """A date on the record changed: move this person's relative campaign copies that have not gone."""
    for recipient in db.exec(
        select(CampaignRecipient).where(
            CampaignRecipient.participant_id == participant.id, CampaignRecipient.status == RecipientStatus.PLANNED
        )
    ).all():
        campaign = db.get(Campaign, recipient.campaign_id)
        if campaign and campaign.relative:
            recipient.due_at = due_for(participant, campaign)
            if recipient.due_at is None:
                recipient.status, recipient.reason = RecipientStatus.WITHDRAWN, "date removed"
            db.add(recipient)
