"""Texts from numbers on no caseload: the list a person triages, linking them to a participant, or
marking them reviewed.

Inbound keeps each such text as a Message with no participant, status "triage" or, when it read
like a crisis, "triage_risk" (signposting already sent, duty contacts told). One sending number
serves the whole deployment, so these texts belong to no service: everyone allowed to triage sees
all of them. Linking only ever reaches participants of the linking person's own service.

Like the other data-access functions, these never commit: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from assistant.care.flags import raise_flag
from assistant.db.models import AuditLog, Message, MessageStatus, Participant, User
from assistant.db.service_settings import for_service
from assistant.db.units import lock_participant

REVIEWED = MessageStatus.TRIAGE_REVIEWED
WAITING = (MessageStatus.TRIAGE_RISK, MessageStatus.TRIAGE)
UNLINKED = (*WAITING, REVIEWED)

CRISIS_REASON = "Sent a message that reads like a crisis from a number not on their record: please contact them today"
MESSAGE_REASON = "Sent a message to read from a number not on their record"


class TriageError(ValueError):
    """Something the person triaging can put right; the message is safe to show them."""


def may_triage(db: Session, user: User) -> bool:
    """Service admins, and whoever is their service's duty contact (whatever their role)."""
    if user.role == "service_admin":
        return True
    duty = for_service(db, user.service_id).duty_contact_email
    return bool(duty) and duty.strip().lower() == user.email.strip().lower()


def unknown_texts(*, show_reviewed: bool) -> Any:
    """Inbound texts from unknown numbers: crisis ones first, then the rest, newest first;
    reviewed ones (when shown) after everything still waiting."""
    statuses = UNLINKED if show_reviewed else WAITING
    rank = sa.case({MessageStatus.TRIAGE_RISK: 0, MessageStatus.TRIAGE: 1}, value=col(Message.status), else_=2)
    return (
        select(Message)
        .where(Message.direction == "in", col(Message.participant_id).is_(None), col(Message.status).in_(statuses))
        .order_by(rank, col(Message.at).desc(), col(Message.id).desc())
    )


def crisis_ids(db: Session, messages: Sequence[Message]) -> set[int]:
    """The texts that read like a crisis when they came in.

    A reviewed text has lost its "triage_risk" status: what inbound recorded in the audit log
    as the text arrived (same instant, same message id) still says whether it did."""
    found = {m.id for m in messages if m.status == MessageStatus.TRIAGE_RISK and m.id is not None}
    reviewed = {m.id: m.at for m in messages if m.status == REVIEWED and m.id is not None}
    if reviewed:
        rows = db.exec(
            select(AuditLog).where(
                AuditLog.action == "unknown_number_text", col(AuditLog.at).in_(set(reviewed.values()))
            )
        ).all()
        found |= {
            row.detail["message_id"]
            for row in rows
            if row.detail.get("reads_like_crisis") and row.detail.get("message_id") in reviewed
        }
    return found


def _waiting_text(db: Session, message_id: int) -> Message:
    """The text, if it is still an unlinked text from an unknown number."""
    query = select(Message).where(
        Message.id == message_id,
        Message.direction == "in",
        col(Message.participant_id).is_(None),
        col(Message.status).in_(UNLINKED),
    )
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # two people acting on the same text: the second finds it done
    found = db.exec(query).first()
    if found is None:
        raise TriageError("That text is no longer waiting: someone may have linked it already.")
    return found


@dataclass
class Linked:
    participant: Participant
    message_ids: list[int] = field(default_factory=list)
    crisis_ids: list[int] = field(default_factory=list)


def link_to_participant(db: Session, *, message_id: int, service_id: int, external_id: str, now: datetime) -> Linked:
    """Move this text, and every other unlinked text from the same phone, onto a participant's record.

    Only a participant of `service_id` can be found; any other answer is the same "not found",
    so nobody learns what another service holds. A text that read like a crisis raises an urgent
    crisis flag (their specialist and the duty contact are told at once); any other text raises
    the usual "message to read" flag. The participant's phone number is not changed."""
    wanted = external_id.strip()[:64]
    if not wanted:
        raise TriageError("Enter the participant's ID from their record.")
    text = _waiting_text(db, message_id)
    participant = db.exec(
        select(Participant).where(
            Participant.service_id == service_id,
            Participant.external_id == wanted,
            col(Participant.erased_at).is_(None),
        )
    ).first()
    if participant is None or participant.id is None:
        raise TriageError(f"No participant with ID {wanted} in your service: check the ID on their record.")
    lock_participant(db, participant.id)  # their texts are handled one at a time, these included
    same_phone = select(Message).where(
        Message.direction == "in",
        Message.phone == text.phone,
        col(Message.participant_id).is_(None),
        col(Message.status).in_(UNLINKED),
    )
    if db.get_bind().dialect.name == "postgresql":
        same_phone = same_phone.with_for_update()
    texts = list(db.exec(same_phone.order_by(col(Message.at), col(Message.id))).all())
    crisis = crisis_ids(db, texts)
    linked = Linked(participant=participant)
    for message in texts:
        assert message.id is not None
        message.participant_id, message.status = participant.id, MessageStatus.RECEIVED
        db.add(message)
        linked.message_ids.append(message.id)
    db.flush()
    for message in texts:
        assert message.id is not None
        evidence = {"message_id": message.id, "from_unknown_number": True}
        if message.id in crisis:
            linked.crisis_ids.append(message.id)
            raise_flag(
                db, participant, kind="crisis", severity="urgent", reason=CRISIS_REASON, now=now, evidence=evidence
            )
        else:
            raise_flag(
                db, participant, kind="message", severity="info", reason=MESSAGE_REASON, now=now, evidence=evidence
            )
    return linked


def mark_reviewed(db: Session, *, message_id: int) -> bool:
    """A person has read it and it belongs to nobody on a caseload: off the list (kept, and shown on request).

    Returns whether it read like a crisis when it came in."""
    text = _waiting_text(db, message_id)
    if text.status == REVIEWED:
        raise TriageError("That text is already marked as reviewed.")
    crisis = text.status == MessageStatus.TRIAGE_RISK
    text.status = REVIEWED
    db.add(text)
    return crisis
