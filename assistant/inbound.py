"""An inbound SMS, start to finish: one transaction, then the replies go out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from .conversation import REPLY_VALID_FOR, Outcome, handle_text
from .db import lock_participant_by_phone, transaction
from .models import InboundReceipt, Message
from .notify import staff_outbox
from .phones import normalise_sender
from .runtime import Runtime

# Twilio allows 1,600 characters; anything longer is kept, cut to this.
MAX_BODY = 1600


@dataclass
class Received:
    duplicate: bool
    outbox: list[int]
    participant_id: int | None = None
    emails: bool = False


def receive_sms(rt: Runtime, *, sid: str, sender: str, body: str, now: datetime) -> Received:
    """Record and answer one inbound text. A repeated MessageSid changes nothing."""
    try:
        with transaction(rt.engine) as db:
            phone = normalise_sender(sender)
            participant = lock_participant_by_phone(db, phone)
            # A MessageSid seen before fails this insert (the primary key) when it is flushed, with
            # the text's own row: that is the duplicate check, and the whole transaction rolls back.
            db.add(InboundReceipt(message_sid=sid, received_at=now))
            if participant is None:
                db.flush()
                outcome = _unknown_number(db, rt, sid=sid, phone=phone, body=body, now=now)
                return Received(
                    duplicate=False,
                    outbox=outcome.outbox + staff_outbox(db),
                    emails=bool(db.info.get("emails_queued")),
                )
            assert participant.id is not None
            inbound = Message(
                participant_id=participant.id,
                direction="in",
                body=body[:MAX_BODY],
                at=now,
                status="received",
                phone=phone,
                provider_sid=sid,
            )
            db.add(inbound)
            db.flush()
            participant.last_inbound_at = now
            db.add(participant)
            outcome = handle_text(db, rt, participant, inbound, now)
            return Received(
                duplicate=False,
                # Texts to the duty contact about an urgent flag go at once with the replies.
                outbox=outcome.outbox + staff_outbox(db),
                participant_id=participant.id,
                emails=bool(db.info.get("emails_queued")),
            )
    except sa.exc.IntegrityError:
        # Another worker recorded the same MessageSid first: Twilio retried.
        return Received(duplicate=True, outbox=[])


def _unknown_number(db: Session, rt: Runtime, *, sid: str, phone: str, body: str, now: datetime) -> Outcome:
    """Keep the text for the service to triage; answer once, saying nothing about anyone."""
    db.add(
        Message(
            participant_id=None,
            direction="in",
            body=body[:MAX_BODY],
            at=now,
            status="triage",
            phone=phone,
            provider_sid=sid,
        )
    )
    answered_before = db.exec(
        select(Message.id).where(
            Message.phone == phone,
            Message.direction == "out",
            Message.participant_id == None,  # noqa: E711
        )
    ).first()
    if answered_before is not None or not phone.startswith("+"):
        return Outcome()  # answered once already, or not a number a reply could reach
    text = rt.catalog.render("common/unknown_number", {})
    reply = Message(
        participant_id=None,
        direction="out",
        body=text,
        at=now,
        status="queued",
        message_key="common/unknown_number",
        phone=phone,
        next_attempt_at=now,
        expires_at=now + REPLY_VALID_FOR,
    )
    db.add(reply)
    db.flush()
    assert reply.id is not None
    return Outcome(outbox=[reply.id])
