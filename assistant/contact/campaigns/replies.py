"""A reply to a campaign's keyword: matched to the last campaign text that asked for it, and flagged."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from assistant import engine
from assistant.care.flags import raise_flag
from assistant.db.models import (
    Campaign,
    CampaignRecipient,
    FlowSession,
    Message,
    Participant,
    RecipientStatus,
)
from assistant.db.open_items import CAMPAIGN_REPLY_WITHIN, RECENT_CAMPAIGN
from assistant.engine.understanding import Reading
from assistant.sessions.lifecycle import last_asked


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


def _written_to_since(db: Session, participant_id: int, sent: Message) -> bool:
    """Whether anything has been written to them since this text."""
    later = select(Message.id).where(
        Message.participant_id == participant_id, Message.direction == "out", col(Message.id) > sent.id
    )
    return db.exec(later.limit(1)).first() is not None


def answers_keyword(body: str, keyword: str, *, nothing_else_read: bool) -> bool:
    """The text is the keyword, perhaps with thanks or kisses ("YES please x"); or it begins with
    the keyword and nothing else in it was read ("YES, see you there"): a "but I can't make it", a
    call request or a word of risk is read, and leaves the text to the rules and a person."""
    word = engine.normalise(keyword)
    return engine.says_only(body, word) or (nothing_else_read and engine.normalise(body).startswith(word + " "))


def handle_reply(
    db: Session,
    participant: Participant,
    inbound: Message,
    waiting: FlowSession | None,
    now: datetime,
    reading: Reading,
) -> str | None:
    """YES to the event invitation is not YES to an appointment reminder: whichever asked last gets it.
    The keyword the text answered, or None. `waiting`: their session waiting for a reply, if any;
    `reading`: the text's reading, which lets a longer text count only if nothing else was read in
    it (no cancellation, call request or word of risk: see answers_keyword)."""
    assert participant.id is not None
    found = recent_campaign(db, participant.id, now)
    if found is None:
        return None
    recipient, campaign, sent = found
    waiting_since = last_asked(db, waiting) if waiting else None
    if waiting_since is not None and sent.at is not None and waiting_since > sent.at:
        return None  # a flow asked its question after the campaign: the reply is the flow's
    keyword = campaign.reply_keyword
    # A longer text begins with the keyword as an answer to the invitation only while the invitation
    # is the last thing sent to them: "yes I'm safe" after the crisis signposting is not for it.
    plainly = not reading.signals and not _written_to_since(db, participant.id, sent)
    if not keyword or not answers_keyword(inbound.body, keyword, nothing_else_read=plainly):
        return None
    recipient.status, recipient.replied_at = RecipientStatus.REPLIED, now
    db.add(recipient)
    raise_flag(
        db,
        participant,
        kind="campaign_interest",
        severity="info",
        reason=f"Replied {keyword.upper()} to '{campaign.name}'",
        now=now,
        evidence={"campaign_id": campaign.id, "message_id": inbound.id},
    )
    return keyword
