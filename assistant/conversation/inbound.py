"""An inbound SMS, start to finish: one transaction, then the replies go out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from assistant.care.flags import raise_flag
from assistant.care.notify import tell_duty_contacts_about_unknown_number
from assistant.care.rhythm import note_reply
from assistant.content.library import CRISIS_FALLBACK, CRISIS_KEY, FALLBACK_LOCALE
from assistant.conversation.number_change import claimant
from assistant.conversation.router import handle_text
from assistant.db.driver import Prepared
from assistant.db.models import AuditLog, InboundReceipt, Message, MessageStatus, Participant, table
from assistant.db.rows import add_now, write_now
from assistant.db.service_settings import all_services
from assistant.db.units import INSERT_OR, lock_participant_by_phone, queued, transaction
from assistant.engine.understanding import read
from assistant.outbox.writer import queue_sms, queue_text, render_for
from assistant.phones import is_e164, normalise_sender
from assistant.runtime import Runtime
from assistant.sending.failures import clear_number_problem
from assistant.sending.sender import Booked, claim_in_unit
from assistant.sessions.lifecycle import Outcome

log = logging.getLogger(__name__)

# Twilio allows 1,600 characters; anything longer is kept, cut to this.
MAX_BODY = 1600


@dataclass
class Received:
    duplicate: bool
    outbox: list[int]
    participant_id: int | None = None
    emails: bool = False
    booked: list[Booked] = field(default_factory=list)  # of `outbox`, those claimed for sending in the unit


Handler = Callable[[Session, Runtime, Participant, Message, datetime], Outcome]


def receive_sms(rt: Runtime, *, sid: str, sender: str, body: str, now: datetime, claim: bool = False) -> Received:
    """Record and answer one inbound text. A repeated MessageSid changes nothing.

    Whatever is on the participant's record, the text is kept and answered: if handling it fails for
    any reason but the database's, it is stored again on its own, flagged for a person to read, and
    answered (crisis signposting when it reads like a crisis).

    `claim`: the caller sends the replies the moment this commits (the post-commit dispatcher), so
    they are claimed in this transaction (`Received.booked`) and need none of their own."""
    try:
        return _receive(rt, sid=sid, sender=sender, body=body, now=now, handle=handle_text, claim=claim)
    except sa.exc.IntegrityError:
        log.exception("inbound text broke a database rule: nothing was kept, Twilio will try again")
        raise
    except sa.exc.SQLAlchemyError:
        raise  # the database's trouble: nothing was kept, and Twilio tries again
    except Exception:
        log.exception("inbound text could not be handled: kept and flagged for a person")
    # Nothing is claimed on this path: its replies wait in the queue, whatever went wrong above.
    return _receive(rt, sid=sid, sender=sender, body=body, now=now, handle=_kept_for_a_person, claim=False)


_receipt = table(InboundReceipt)
# Built once per database (it runs on every text): the receipt, or nothing if the MessageSid has one.
_RECEIPT = {
    name: Prepared(
        insert(_receipt)
        .values(message_sid=sa.bindparam("sid"), received_at=sa.bindparam("at", type_=_receipt.c.received_at.type))
        .on_conflict_do_nothing()
        .returning(_receipt.c.message_sid)
    )
    for name, insert in INSERT_OR.items()
}


def _first_time(db: Session, sid: str, now: datetime) -> bool:
    """Record the MessageSid; False if it was recorded before (another worker, or Twilio's retry).
    Only this insert decides what is a duplicate: any other integrity error is a real fault."""
    insert = _RECEIPT[db.get_bind().dialect.name]
    return insert.run(db, {"sid": sid, "at": now}).first() is not None


def _receive(rt: Runtime, *, sid: str, sender: str, body: str, now: datetime, handle: Handler, claim: bool) -> Received:
    phone = normalise_sender(sender)  # before the transaction: SQLite's writers wait while it is open
    with transaction(rt.engine) as db:
        # A number on no record replying with a code sent to it is the participant moving number.
        participant = lock_participant_by_phone(db, phone) or claimant(db, phone, body, now)
        if not _first_time(db, sid, now):
            return Received(duplicate=True, outbox=[])  # Twilio retried: recorded and answered already
        if participant is None:
            outcome = _unknown_number(db, rt, sid=sid, phone=phone, body=body, now=now)
            return _received(db, rt, outcome, None, now, claim)
        assert participant.id is not None
        note_reply(db, participant, now)  # the rhythm is read before the text changes anything
        write_now(db, participant, last_inbound_at=now)
        inbound = add_now(
            db,
            Message,
            participant_id=participant.id,
            direction="in",
            body=body[:MAX_BODY],
            at=now,
            status="received",
            phone=phone,
            provider_sid=sid,
        )
        if participant.unreachable:  # a text from this number proves it reaches their phone
            clear_number_problem(db, participant, now, why="texted_in", by="assistant")
        outcome = handle(db, rt, participant, inbound, now)
        return _received(db, rt, outcome, participant.id, now, claim)


def _received(
    db: Session, rt: Runtime, outcome: Outcome, participant_id: int | None, now: datetime, claim: bool
) -> Received:
    """What the unit wrote to go out, claimed in it when the caller sends at once. Last in the unit."""
    outbox = outcome.outbox + queued(db).texts  # texts to the duty contact go at once with the replies
    booked = claim_in_unit(db, rt, outbox, now) if claim else []
    return Received(
        duplicate=False, outbox=outbox, participant_id=participant_id, emails=queued(db).emails, booked=booked
    )


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
        reply_id = queue_sms(db, rt, participant, key, now)
    except sa.exc.SQLAlchemyError:
        raise
    except Exception:
        log.exception("no reply could be written to an inbound text")
        return outcome
    outcome.outbox.append(reply_id)
    return outcome


# A run of crisis texts from one unknown number: signposting at most this often, and one alert
# to the duty contacts a day until someone links the number to a person.
UNKNOWN_SIGNPOSTING_EVERY = timedelta(minutes=10)
UNKNOWN_ALERT_EVERY = timedelta(hours=24)


def _unknown_number(db: Session, rt: Runtime, *, sid: str, phone: str, body: str, now: datetime) -> Outcome:
    """Keep the text for the service to triage and answer it once, saying nothing about anyone.

    A text that reads like a crisis is never answered "we don't recognise this number": it gets
    the crisis signposting, and the duty contacts are told at once (a new phone, a shared one:
    it may be someone on a caseload)."""
    risk = read(body, rt.phrases.get(None)).has("risk")
    kept = Message(
        participant_id=None,
        direction="in",
        body=body[:MAX_BODY],
        at=now,
        status="triage_risk" if risk else "triage",
        phone=phone,
        provider_sid=sid,
    )
    db.add(kept)
    db.flush()
    db.add(
        AuditLog(
            at=now,
            user_email="assistant",
            action="unknown_number_text",
            detail={"message_id": kept.id, "reads_like_crisis": risk},
        )
    )
    if risk:
        return _unknown_number_crisis(db, rt, phone=phone, kept=kept, now=now)
    answered_before = db.exec(
        select(Message.id).where(
            Message.phone == phone,
            Message.direction == "out",
            Message.participant_id == None,  # noqa: E711
        )
    ).first()
    if answered_before is not None or not is_e164(phone):
        return Outcome()  # answered once already, or not a number a reply could reach
    return Outcome(outbox=[_reply_to_unknown(db, rt, phone, "common/unknown_number", now)])


def _unknown_number_crisis(db: Session, rt: Runtime, *, phone: str, kept: Message, now: datetime) -> Outcome:
    outcome = Outcome()
    recent_signposting = db.exec(
        select(Message.id).where(
            Message.phone == phone,
            Message.direction == "out",
            Message.message_key == CRISIS_KEY,
            col(Message.at) > now - UNKNOWN_SIGNPOSTING_EVERY,
        )
    ).first()
    if is_e164(phone) and recent_signposting is None:
        outcome.outbox.append(_reply_to_unknown(db, rt, phone, CRISIS_KEY, now))
    recent_alert = db.exec(
        select(Message.id).where(
            Message.phone == phone,
            Message.direction == "in",
            Message.status == MessageStatus.TRIAGE_RISK,
            Message.id != kept.id,
            col(Message.at) > now - UNKNOWN_ALERT_EVERY,
        )
    ).first()
    if recent_alert is None:
        tell_duty_contacts_about_unknown_number(db, now)  # its texts go with the reply (queued)
    return outcome


def _reply_to_unknown(db: Session, rt: Runtime, phone: str, key: str, now: datetime) -> int:
    """A reply to a number on no caseload: no name, nobody's details, in the default locale. Its
    urgent-help numbers are those of the services' nation; where services span several nations,
    the fixed UK-wide text. Only ever to a valid E.164 number (callers check; this refuses too)."""
    if not is_e164(phone):
        raise ValueError("a reply goes only to a valid E.164 number")
    nations = {settings.nation for settings in all_services(db).values()}
    if key == CRISIS_KEY and len(nations) != 1:
        text = CRISIS_FALLBACK
    else:
        variables = {"first_name": "", "specialist_name": "The team", "nation": next(iter(nations), "england")}
        text = render_for(rt, key, variables, FALLBACK_LOCALE)
    return queue_text(db, phone=phone, body=text, key=key, now=now)
