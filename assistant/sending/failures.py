"""What a failed send means for the record: a number that no longer reaches a phone, crisis signposting
that did not arrive, and a number that reaches a phone again."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from assistant.care import rules
from assistant.care.flags import raise_flag, self_resolve
from assistant.content.library import CRISIS_KEY
from assistant.db.models import AuditLog, Message, Participant
from assistant.outbox.writer import withdraw_outbox
from assistant.transports import OPTED_OUT_ERROR, PERMANENT_NUMBER_ERRORS

# Sent even without consent to text contact, or to a number marked unreachable: crisis signposting is in
# the person's vital interests (if the carrier refuses it, a person is told and phones instead).
VITAL_KEYS = {CRISIS_KEY}


def signposting_not_delivered(db: Session, message: Message, code: str | None, now: datetime) -> None:
    """The crisis signposting was refused or not delivered: the people on the flag hear it at once."""
    person = db.get(Participant, message.participant_id) if message.participant_id else None
    if person is None:
        return
    raise_flag(
        db,
        person,
        kind="crisis",
        severity="urgent",
        reason="Sent a message that reads like a crisis: please contact them today",
        now=now,
        evidence={
            "signposting_not_delivered": code,
            "message_id": message.id,
            "note": "The crisis signposting text was refused: phone them instead",
        },
        news="signposting_not_delivered",
    )


def clear_number_problem(db: Session, participant: Participant, now: datetime, *, why: str, by: str) -> bool:
    """The number reaches a phone again (they texted from it) or is a new one: lift the unreachable
    mark, close its flag with a note, and keep the change in the audit log. True if there was a mark."""
    if not participant.unreachable:
        return False
    assert participant.id is not None
    was = participant.unreachable_reason
    participant.unreachable, participant.unreachable_reason = False, None
    db.add(participant)
    notes = {"texted_in": "They texted from this number: texts resume", "phone_changed": "The phone number changed"}
    self_resolve(db, participant.id, "unreachable", now, note=notes.get(why, why))
    db.add(
        AuditLog(
            at=now,
            service_id=participant.service_id,
            user_email=by,
            action="reachable_again",
            participant_id=participant.id,
            detail={"why": why, "was": was},
        )
    )
    return True


def mark_number_problem(db: Session, participant_id: int, code: str, now: datetime, message_id: int | None) -> None:
    """A permanent error for this number: stop sending and tell the specialist."""
    if code == "30003":
        person = db.get(Participant, participant_id)
        if person is not None:
            db.flush()
            rules.after_unreachable_error(db, person, now)
        return
    if code not in PERMANENT_NUMBER_ERRORS:
        return
    participant = db.get(Participant, participant_id)
    if participant is None:
        return
    if code == OPTED_OUT_ERROR:
        participant.opted_out = True
        participant.opted_out_at = participant.opted_out_at or now
        reason = "Texts are blocked: the participant opted out with the carrier"
        kind = "opted_out"
    else:
        participant.unreachable = True
        participant.unreachable_reason = f"twilio error {code}"
        reason = "Cannot be reached by text: the number is invalid, a landline or unknown"
        kind = "unreachable"
    db.add(participant)
    withdraw_outbox(db, participant_id, reason=kind)
    raise_flag(
        db,
        participant,
        kind=kind,
        severity="action",
        reason=reason,
        now=now,
        evidence={"message_id": message_id, "error_code": code},
    )
