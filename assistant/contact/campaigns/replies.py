"""A reply to a campaign's keyword: matched to the last campaign text that asked for it, and flagged."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from assistant import engine
from assistant.care.flags import raise_flag
from assistant.db.models import (
    Campaign,
    CampaignRecipient,
    Message,
    Participant,
    RecipientStatus,
)
from assistant.db.open_items import CAMPAIGN_REPLY_WITHIN, RECENT_CAMPAIGN


def recent_campaign(
    db: Session, participant_id: int, now: datetime, within: timedelta = CAMPAIGN_REPLY_WITHIN
) -> tuple[CampaignRecipient, Campaign, Message] | None:
    """The last campaign text this person got, if it asked for a reply keyword and is recent."""
    # Ids first, whole rows only when found.
    found = db.execute(RECENT_CAMPAIGN, {"participant_id": participant_id, "since": now - within}).first()
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
    if not campaign.reply_keyword or not engine.says_only(inbound.body, engine.normalise(campaign.reply_keyword)):
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
