"""Delivery status callbacks: every one kept, applied in any order, a message only ever moving forward."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from assistant.db.models import Message, MessageStatus, StatusEvent
from assistant.db.units import transaction
from assistant.runtime import Runtime
from assistant.sending.failures import VITAL_KEYS, mark_number_problem, signposting_not_delivered

# Status order for callbacks that arrive out of order: only ever move forward.
STATUS_RANK: dict[str, int] = {
    MessageStatus.QUEUED: 0,
    MessageStatus.ACCEPTED: 1,
    MessageStatus.SCHEDULED: 1,
    MessageStatus.SENDING: 2,
    MessageStatus.SENT: 3,
    MessageStatus.DELIVERED: 4,
    MessageStatus.UNDELIVERED: 4,
    MessageStatus.FAILED: 4,
    MessageStatus.READ: 5,
}


def apply_status(db: Session, message: Message, status: str, error_code: str | None, now: datetime) -> None:
    # Callbacks can arrive in any order: only ever move a message forward.
    withdrawn = message.status in (MessageStatus.CANCELLED, MessageStatus.EXPIRED, MessageStatus.SUPPRESSED)
    moved = not withdrawn and STATUS_RANK.get(status, -1) > STATUS_RANK.get(message.status, 0)
    if moved:
        message.status = status
    if error_code and error_code != "0":
        message.error_code = error_code
    db.add(message)
    if moved and status in (MessageStatus.FAILED, MessageStatus.UNDELIVERED) and message.message_key in VITAL_KEYS:
        signposting_not_delivered(db, message, error_code, now)  # once: a repeated callback does not move it
    if (
        error_code
        and error_code != "0"
        and message.participant_id
        and status in (MessageStatus.FAILED, MessageStatus.UNDELIVERED)
    ):
        mark_number_problem(db, message.participant_id, error_code, now, message.id)


def apply_pending_status_events(db: Session, message: Message) -> None:
    if not message.provider_sid:
        return
    events = db.exec(
        select(StatusEvent)
        .where(StatusEvent.provider_sid == message.provider_sid, StatusEvent.applied == False)  # noqa: E712
        .order_by(col(StatusEvent.id))
    ).all()
    for event in events:
        assert event.received_at is not None
        apply_status(db, message, event.status, event.error_code, event.received_at)
        event.applied = True
        db.add(event)


def record_status_callback(rt: Runtime, *, sid: str, status: str, error_code: str | None, now: datetime) -> bool:
    """Keep every callback; apply it now if we know the message, else when we learn its sid."""
    with transaction(rt.engine) as db:
        event = StatusEvent(provider_sid=sid, status=status, error_code=error_code, received_at=now)
        db.add(event)
        db.flush()
        message = db.exec(select(Message).where(Message.provider_sid == sid, Message.direction == "out")).first()
        if message is None:
            return False
        apply_pending_status_events(db, message)
        return True
