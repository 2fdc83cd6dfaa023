"""Messages left in `sending` by a sender that died mid-send, settled with the provider's record, never
blindly resent."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from assistant.db.driver import Prepared
from assistant.db.models import Message, MessageStatus, table
from assistant.db.rows import claim
from assistant.db.units import transaction
from assistant.runtime import Runtime
from assistant.sending.status import apply_pending_status_events

log = logging.getLogger(__name__)

_message = table(Message)
# A claim older than this with no result: its sender died mid-send.
STALE_CLAIM = timedelta(minutes=2)


_ANY_STALE = Prepared(
    sa.select(_message.c.id)
    .where(
        _message.c.direction == "out",
        _message.c.status == MessageStatus.SENDING,
        _message.c.claimed_at < sa.bindparam("before", type_=_message.c.claimed_at.type),
    )
    .limit(1)
)


def reconcile_stale(rt: Runtime, now: datetime) -> tuple[int, int]:
    """Messages stuck in `sending` (the sender died mid-send): ask the provider what happened.
    Each is its own unit: one the provider cannot answer for stays as it is, to be asked about
    on a later tick, and the others go on. Returns (reconciled, failed)."""
    if _ANY_STALE.read(rt.engine, {"before": now - STALE_CLAIM}).first() is None:
        return 0, 0  # the usual case, asked on every tick
    with transaction(rt.engine) as db:
        stale = db.exec(
            select(Message).where(
                Message.direction == "out",
                Message.status == MessageStatus.SENDING,
                col(Message.claimed_at) < now - STALE_CLAIM,
            )
        ).all()
    reconciled = failed = 0
    for message in stale:
        try:
            _reconcile_one(rt, message, now)
            reconciled += 1
        except Exception:
            log.exception("could not reconcile message %s with the provider", message.id)
            failed += 1
    return reconciled, failed


def _reconcile_one(rt: Runtime, message: Message, now: datetime) -> None:
    assert message.claimed_at is not None
    sid = rt.transport.lookup(to=message.phone, body=message.body, key=f"out-{message.id}", since=message.claimed_at)
    with transaction(rt.engine) as db:
        row = claim(db, Message, message.id)
        # Only the claim we asked about: another sender may have reconciled and re-claimed it meanwhile.
        if row is None or row.status != MessageStatus.SENDING or row.claimed_at != message.claimed_at:
            return
        if sid:
            row.status, row.provider_sid, row.sent_at = MessageStatus.SENT, sid, row.claimed_at
            db.add(row)
            db.flush()
            apply_pending_status_events(db, row)
        else:
            row.status, row.next_attempt_at = MessageStatus.QUEUED, now
            db.add(row)
