"""An inbound SMS, start to finish: one transaction, then the replies go out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from .content import CRISIS_KEY
from .conversation import REPLY_VALID_FOR, Outcome, queue_sms
from .db import lock_participant_by_phone, transaction
from .engine.understanding import read
from .flags import raise_flag
from .models import InboundReceipt, Message, Participant
from .notify import staff_outbox
from .outbox import clear_number_problem
from .phones import normalise_sender
from .routing import handle_text
from .runtime import Runtime

log = logging.getLogger(__name__)

# Twilio allows 1,600 characters; anything longer is kept, cut to this.
MAX_BODY = 1600


@dataclass
class Received:
    duplicate: bool
    outbox: list[int]
    participant_id: int | None = None
    emails: bool = False


Handler = Callable[[Session, Runtime, Participant, Message, datetime], Outcome]


def receive_sms(rt: Runtime, *, sid: str, sender: str, body: str, now: datetime) -> Received:
    """Record and answer one inbound text. A repeated MessageSid changes nothing.

    Whatever is on the participant's record, the text is kept and answered: if handling it fails for
    any reason but the database's, it is stored again on its own, flagged for a person to read, and
    answered (crisis signposting when it reads like a crisis)."""
    try:
        return _receive(rt, sid=sid, sender=sender, body=body, now=now, handle=handle_text)
    except sa.exc.SQLAlchemyError:
        raise  # the database's trouble: nothing was kept, and Twilio tries again
    except Exception:
        log.exception("inbound text could not be handled: kept and flagged for a person")
    return _receive(rt, sid=sid, sender=sender, body=body, now=now, handle=_kept_for_a_person)


def _receive(rt: Runtime, *, sid: str, sender: str, body: str, now: datetime, handle: Handler) -> Received:
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
            # A text from this number proves it reaches their phone.
            clear_number_problem(db, participant, now, why="texted_in", by="assistant")
            outcome = handle(db, rt, participant, inbound, now)
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


def _kept_for_a_person(db: Session, rt: Runtime, participant: Participant, inbound: Message, now: datetime) -> Outcome:
    """The text could not be handled as usual: a person reads it, and the participant is still answered."""
    outcome = Outcome()
    evidence = {"message_id": inbound.id}
    raise_flag(
        db,
        participant,
        kind="unhandled_message",  # its own flag: never folded into an open "message to read"
        severity="action",
        reason="Sent a message the assistant could not answer: please read it",
        now=now,
        evidence=evidence,
    )
    if read(inbound.body, rt.phrases.get(None)).has("risk"):
        raise_flag(
            db,
            participant,
            kind="crisis",
            severity="urgent",
            reason="Sent a message that reads like a crisis: please contact them today",
            now=now,
            evidence=evidence,
        )
        key = CRISIS_KEY  # its text never fails: there is a fixed one in the code
    else:
        key = "common/free_text_ack"
    try:
        reply = queue_sms(db, rt, participant, key, now)
    except sa.exc.SQLAlchemyError:
        raise
    except Exception:
        log.exception("no reply could be written to an inbound text")
        return outcome
    assert reply.id is not None
    outcome.outbox.append(reply.id)
    return outcome


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
