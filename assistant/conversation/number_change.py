"""NEW NUMBER by text, confirmed by a code texted to the new number.

1. The participant says they have a new number ("new number 07700 900202"); if they give
   none, they are asked for it.
2. A six-digit code goes to the new number; the old one is told where it went.
3. The code, replied from either phone, moves their texts to the new number. A wrong code
   changes nothing and says so; after MAX_TRIES wrong ones the change is left to the
   specialist. Only a hash of the code is kept; it lapses after CODE_VALID_FOR.

A number already on another record is never taken over by text (and nothing about that
record is said): the specialist sorts it out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from assistant.conversation.controls import open_request, record, reply, show_specialist
from assistant.db.models import ContactRequest, Participant, RequestStatus
from assistant.db.units import lock_participant
from assistant.engine.contact_words import code_in, phone_in
from assistant.phones import PhoneError, to_e164

if TYPE_CHECKING:
    from assistant.conversation.router import Text

CODE_VALID_FOR = timedelta(hours=24)
MAX_TRIES = 3


def _hash(request_id: int, code: str) -> str:
    return hashlib.sha256(f"{request_id}:{code}".encode()).hexdigest()


def _valid_phone(raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        return to_e164(raw)
    except PhoneError:
        return None


def _end_open(db: Session, participant_id: int, now: datetime) -> None:
    for old in db.exec(
        select(ContactRequest).where(
            ContactRequest.participant_id == participant_id,
            ContactRequest.kind == "new_number",
            col(ContactRequest.status).in_((RequestStatus.ASKED, RequestStatus.CODE_SENT)),
        )
    ).all():
        old.status, old.done_at = RequestStatus.REPLACED, now
        db.add(old)


def send_code(text: Text, phone: str) -> None:
    db, participant, now = text.db, text.participant, text.now
    assert participant.id is not None
    _end_open(db, participant.id, now)
    taken = db.exec(select(Participant.id).where(Participant.phone == phone)).first()
    if phone == participant.phone or taken is not None:
        record(db, participant, "new_number", RequestStatus.PASSED_ON, now, ending=phone[-4:])
        show_specialist(
            db, text, "Gave a new number by text that is already on a record: please check it with them",
            severity="action", ending=phone[-4:],
        )  # fmt: skip
        reply(text, "common/new_number_passed_on")
        return
    request = record(db, participant, "new_number", RequestStatus.CODE_SENT, now, phone=phone)
    code = f"{secrets.randbelow(10**6):06d}"
    assert request.id is not None
    request.code_hash, request.expires_at, request.done_at = _hash(request.id, code), now + CODE_VALID_FOR, None
    db.add(request)
    reply(text, "common/new_number_code", to=phone, code=code)
    reply(text, "common/new_number_sent", to=text.message.phone, ending=phone[-4:])


def new_number(text: Text) -> bool:
    """ "New number 07700 900202", or the number in reply to being asked for it."""
    participant = text.participant
    assert participant.id is not None
    if text.crisis:
        return False
    phone = _valid_phone(phone_in(text.message.body))
    if not text.reading.has("new_number") and phone is None:
        return False  # neither says so nor gives a number: no need to look for an open request
    asked = open_request(text.db, participant.id, "new_number", RequestStatus.ASKED, text.now)
    if not text.reading.has("new_number") and not (asked and phone):
        return False
    text.end_flow("new_number")
    if phone is not None:
        send_code(text, phone)
    else:
        _end_open(text.db, participant.id, text.now)
        record(
            text.db, participant, "new_number", RequestStatus.ASKED, text.now, words=text.reading.words("new_number")
        )
        reply(text, "common/new_number_ask")
    return True


def code_reply(text: Text) -> bool:
    """A code replied from the old phone or the new one: right, the texts move; wrong, nothing changes."""
    db, participant, now = text.db, text.participant, text.now
    assert participant.id is not None
    code = code_in(text.message.body)
    request = open_request(db, participant.id, "new_number", RequestStatus.CODE_SENT, now) if code else None
    if text.crisis or request is None or code is None or request.id is None:
        return False
    phone = str(request.detail["phone"])
    if hmac.compare_digest(request.code_hash or "", _hash(request.id, code)):
        old = participant.phone
        participant.phone, participant.updated_at = phone, now
        db.add(participant)
        request.status, request.done_at = RequestStatus.DONE, now
        db.add(request)
        record(db, participant, "new_number", RequestStatus.DONE, now, ending=phone[-4:], was_ending=old[-4:])
        show_specialist(db, text, f"Changed their number by text to one ending {phone[-4:]} (confirmed by a code)")
        reply(text, "common/new_number_done")
        return True
    request.tries += 1
    if request.tries >= MAX_TRIES:
        request.status, request.done_at = RequestStatus.REFUSED, now
        show_specialist(
            db, text, "Tried to change their number by text but the code did not match: please check with them",
            severity="action", ending=phone[-4:],
        )  # fmt: skip
    db.add(request)
    record(db, participant, "new_number", RequestStatus.WRONG_CODE, now, tries=request.tries)
    reply(text, "common/new_number_wrong_code", to=text.message.phone, tries_left=MAX_TRIES - request.tries)
    return True


def claimant(db: Session, phone: str, body: str, now: datetime) -> Participant | None:
    """A text from a number on no record that replies with a code sent to it: read as from the
    participant who asked for that number (locked, as every participant's text is)."""
    if code_in(body) is None:
        return None
    waiting = db.exec(
        select(ContactRequest)
        .where(
            ContactRequest.kind == "new_number",
            ContactRequest.status == RequestStatus.CODE_SENT,
            col(ContactRequest.expires_at) > now,
        )
        .order_by(col(ContactRequest.id).desc())
    ).all()
    for request in waiting:
        if request.detail.get("phone") == phone:
            return lock_participant(db, request.participant_id)
    return None
