"""Delivering the outbox: claim, send, record. Safe to run in several processes at once.

A message is claimed (queued -> sending) in its own committed transaction before
the provider is called, so two senders never send the same row. A row left in
`sending` by a crash is reconciled with the provider's record, not blindly resent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from . import rules
from .appointments import service_settings
from .conversation import OPT_IN_KEYS, withdraw_outbox
from .db import skip_locked, transaction
from .flags import raise_flag
from .models import Message, Participant, StatusEvent
from .pacing import pacer_for
from .quiet import next_allowed
from .runtime import Runtime
from .sms import OPTED_OUT_ERROR, PERMANENT_NUMBER_ERRORS, SendResult

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
# Sent even without consent to text contact: crisis signposting is in the person's vital interests.
VITAL_KEYS = {"common/crisis"}
STALE_CLAIM = timedelta(minutes=2)
# Status order for callbacks that arrive out of order: only ever move forward.
STATUS_RANK = {
    "queued": 0,
    "accepted": 1,
    "scheduled": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "read": 5,
}


def backoff(attempt: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** (attempt - 1), 3600))


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    withheld: int = 0


# An earlier message to the same phone still waiting to go (built once: aliasing a model is slow).
_EARLIER = aliased(Message)
_BLOCKED = (
    select(_EARLIER.id)
    .where(
        _EARLIER.phone == Message.phone,
        _EARLIER.direction == "out",
        col(_EARLIER.status).in_(("queued", "sending")),
        col(_EARLIER.id) < Message.id,
    )
    .exists()
)


def _candidates(
    db: Session, now: datetime, only: list[int] | None, limit: int, participant_id: int | None = None
) -> list[int]:
    blocked = _BLOCKED
    query = (
        select(Message.id)
        .where(
            Message.direction == "out",
            Message.status == "queued",
            col(Message.next_attempt_at) <= now,
            ~blocked,  # keep each person's messages in order
        )
        .order_by(col(Message.id))
        .limit(limit)
    )
    if only is not None:
        # Anything older still queued for the same people goes first (or is withdrawn), keeping order.
        phones = select(Message.phone).where(col(Message.id).in_(only))
        query = query.where(or_(col(Message.id).in_(only), col(Message.phone).in_(phones)))
    if participant_id is not None:
        query = query.where(Message.participant_id == participant_id)
    return [i for i in db.exec(query).all() if i is not None]


def _claim(rt: Runtime, message_id: int, now: datetime) -> Message | None:
    """Take one queued message for sending, or decide it must not go."""
    with transaction(rt.engine) as db:
        query = skip_locked(db, select(Message).where(Message.id == message_id))
        message: Message | None = db.exec(query).first()
        if message is None or message.status != "queued":
            return None
        participant = db.get(Participant, message.participant_id) if message.participant_id else None
        reason = None
        if message.expires_at and now > message.expires_at:
            reason = "expired"
        elif participant and participant.opted_out and message.message_key not in OPT_IN_KEYS | VITAL_KEYS:
            reason = "opted_out"
        elif participant and participant.unreachable:
            reason = "unreachable"
        elif participant and not participant.sms_consent and message.message_key not in VITAL_KEYS:
            reason = "no_consent"
        if reason:
            message.status = "expired" if reason == "expired" else "suppressed"
            message.error_message = reason
            db.add(message)
            return None
        if message.automated and participant:
            # A retry can drift into quiet hours: hold it until texts may arrive again.
            allowed = next_allowed(now, participant, service_settings(db, participant))
            if allowed > now:
                if message.expires_at and allowed >= message.expires_at:
                    message.status, message.error_message = "expired", "quiet_hours"
                else:
                    message.next_attempt_at = allowed
                db.add(message)
                return None
        message.status = "sending"
        message.claimed_at = now
        message.attempts += 1
        db.add(message)
        return message


def send_due(
    rt: Runtime, now: datetime, *, only: list[int] | None = None, limit: int = 500, participant_id: int | None = None
) -> SendReport:
    report = SendReport()
    tried: set[int] = set()
    while len(tried) < limit:
        # Sending one message can free the next one queued behind it for the same person.
        with transaction(rt.engine) as db:
            ids = [i for i in _candidates(db, now, only, limit, participant_id) if i not in tried]
        if not ids:
            break
        for message_id in ids:
            tried.add(message_id)
            message = _claim(rt, message_id, now)
            if message is None:
                report.withheld += 1
                continue
            pacer_for(rt).take(message.segments)
            result = rt.transport.send(
                to=message.phone,
                body=message.body,
                key=f"out-{message.id}",
                status_callback=rt.status_callback_url() if rt.transport.name == "twilio" else None,
            )
            outcome = _record_result(rt, message_id, result, now)
            setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def _record_result(rt: Runtime, message_id: int, result: SendResult, now: datetime) -> str:
    with transaction(rt.engine) as db:
        message = db.get(Message, message_id)
        assert message is not None
        if result.ok:
            message.status = "sent"
            message.provider_sid = result.sid
            message.sent_at = now
            db.add(message)
            db.flush()
            apply_pending_status_events(db, message)
            return "sent"
        message.error_code = result.error_code
        message.error_message = result.error_message
        if result.transient and message.attempts < MAX_ATTEMPTS:
            message.status = "queued"
            message.next_attempt_at = now + backoff(message.attempts)
            db.add(message)
            return "retried"
        message.status = "failed"
        db.add(message)
        if message.message_key in VITAL_KEYS and message.participant_id:
            person = db.get(Participant, message.participant_id)
            if person is not None:
                raise_flag(
                    db,
                    person,
                    kind="crisis",
                    severity="urgent",
                    reason="Sent a message that reads like a crisis: please contact them today",
                    now=now,
                    evidence={
                        "signposting_not_delivered": result.error_code,
                        "note": "The crisis signposting text was refused: phone them instead",
                    },
                )
        if message.participant_id and result.error_code:
            mark_number_problem(db, message.participant_id, result.error_code, now, message.id)
        log.warning("send failed: message=%s code=%s", message.id, result.error_code)
        return "failed"


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


def apply_status(db: Session, message: Message, status: str, error_code: str | None, now: datetime) -> None:
    # Callbacks can arrive in any order: only ever move a message forward.
    withdrawn = message.status in ("cancelled", "expired", "suppressed")
    if not withdrawn and STATUS_RANK.get(status, -1) > STATUS_RANK.get(message.status, 0):
        message.status = status
    if error_code and error_code != "0":
        message.error_code = error_code
        if message.participant_id and status in ("failed", "undelivered"):
            mark_number_problem(db, message.participant_id, error_code, now, message.id)
    db.add(message)


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


def reconcile_stale(rt: Runtime, now: datetime) -> int:
    """Messages stuck in `sending` (the sender died mid-send): ask the provider what happened."""
    with transaction(rt.engine) as db:
        stale = db.exec(
            select(Message).where(
                Message.direction == "out",
                Message.status == "sending",
                col(Message.claimed_at) < now - STALE_CLAIM,
            )
        ).all()
    for message in stale:
        assert message.claimed_at is not None
        sid = rt.transport.lookup(
            to=message.phone, body=message.body, key=f"out-{message.id}", since=message.claimed_at
        )
        with transaction(rt.engine) as db:
            row = db.exec(skip_locked(db, select(Message).where(Message.id == message.id))).first()
            # Only the claim we asked about: another sender may have reconciled and re-claimed it meanwhile.
            if row is None or row.status != "sending" or row.claimed_at != message.claimed_at:
                continue
            if sid:
                row.status, row.provider_sid, row.sent_at = "sent", sid, row.claimed_at
                db.add(row)
                db.flush()
                apply_pending_status_events(db, row)
            else:
                row.status, row.next_attempt_at = "queued", now
                db.add(row)
    return len(stale)
