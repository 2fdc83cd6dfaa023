"""A reply to a campaign's keyword: matched to the last campaign text that asked for it, and flagged."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from assistant import engine
from assistant.care.flags import raise_flag
from assistant.db.models import (
    Campaign,
    CampaignRecipient,
    Message,
    Participant,
    RecipientStatus,
    table,
)

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
    recipient.status, recipient.replied_at = RecipientStatus.REPLIED, now
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
