"""A campaign's state: pause, resume or cancel it, and count where each of its copies has got to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from assistant.contact.campaigns.text import CampaignError
from assistant.db.models import (
    Campaign,
    CampaignRecipient,
    CampaignStatus,
    Message,
    MessageStatus,
    Participant,
    RecipientStatus,
)
from assistant.outbox.writer import withdraw_outbox


def set_status(db: Session, campaign: Campaign, status: str, now: datetime) -> int:
    """Pause, resume or cancel. Cancelling withdraws every copy not yet gone (and its queued text)."""
    if status not in (CampaignStatus.PAUSED, CampaignStatus.SCHEDULED, CampaignStatus.CANCELLED):
        raise CampaignError("a campaign can be paused, resumed or cancelled")
    if campaign.status in (CampaignStatus.CANCELLED, CampaignStatus.DONE):
        raise CampaignError(f"the campaign is already {campaign.status}")
    campaign.status, campaign.updated_at = status, now
    db.add(campaign)
    return _withdraw_copies(db, campaign) if status == CampaignStatus.CANCELLED else 0


def _withdraw_copies(db: Session, campaign: Campaign) -> int:
    """Every copy not yet gone is withdrawn, and its queued text with it; a copy whose text has
    already left (or gone another way) stays counted as sent."""
    rows = db.execute(
        sa.select(CampaignRecipient, col(Message.status))
        .outerjoin(Message, col(Message.id) == CampaignRecipient.message_id)
        .where(
            col(CampaignRecipient.campaign_id) == campaign.id,
            col(CampaignRecipient.status).in_((RecipientStatus.PLANNED, RecipientStatus.QUEUED)),
        )
    ).all()
    withdrawn = [r for r, message_status in rows if r.message_id is None or message_status == MessageStatus.QUEUED]
    withdraw_outbox(db, reason="campaign cancelled", message_ids=[r.message_id for r in withdrawn if r.message_id])
    for recipient in withdrawn:
        recipient.status, recipient.reason = RecipientStatus.WITHDRAWN, "campaign cancelled"
        db.add(recipient)
    return len(withdrawn)


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
        if message_status in (MessageStatus.SENT, MessageStatus.DELIVERED):
            state = message_status
        elif message_status in (
            MessageStatus.FAILED,
            MessageStatus.UNDELIVERED,
            MessageStatus.EXPIRED,
            MessageStatus.SUPPRESSED,
        ):
            state = "failed"
            failures[error_code or message_status] = failures.get(error_code or message_status, 0) + 1
        if status == RecipientStatus.REPLIED:
            state = "replied"
        counts[state] = counts.get(state, 0) + 1
        people.setdefault(state, []).append(participant_id)
        if message_status is not None and opted_out and opted_out_at and sent_at and opted_out_at >= sent_at:
            counts["opted_out"] += 1
            people["opted_out"].append(participant_id)
    return {"counts": counts, "participants": people, "failures": failures, "total": len(rows)}
