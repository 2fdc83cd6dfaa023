"""Which queued texts may go now, and claiming them (queued -> sending) with their slot in the
sending pace, so that no other sender takes them: a claimed text is one sender's alone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from assistant.care.quiet import next_allowed
from assistant.db.driver import Prepared
from assistant.db.models import Message, MessageStatus, Participant, table
from assistant.db.send_pace import Pacer
from assistant.db.service_settings import for_service
from assistant.db.units import among_param, one_of, transaction
from assistant.outbox.writer import OPT_IN_KEYS
from assistant.runtime import Runtime
from assistant.sending.failures import VITAL_KEYS

# Never held back behind an earlier message to the same phone (one waiting out a retry, or left mid-send
# by a crash until it is reconciled): safety texts go at once. Routine texts keep their order.
SAFETY_KEYS = VITAL_KEYS | {"staff/urgent_flag"}
# A message written this soon after the person last texted (or before they did) goes to a number that
# evidently reaches a phone: a mark of "unreachable" never holds it back.
JUST_TEXTED = timedelta(minutes=10)

_message, _participant = table(Message), table(Participant)
# An earlier message to the same phone still waiting to go.
_earlier = _message.alias("earlier")
_BLOCKED = (
    sa.select(_earlier.c.id)
    .where(
        _earlier.c.phone == _message.c.phone,
        _earlier.c.direction == "out",
        one_of(_earlier.c.status, (MessageStatus.QUEUED, MessageStatus.SENDING)),
        _earlier.c.id < _message.c.id,
    )
    .exists()
)
# The crisis signposting goes before anything written with it (the duty contact's text about the
# same flag is written first), whichever sender takes them: the person at risk hears first.
_DUE = (
    sa.select(_message.c.id)
    .where(
        _message.c.direction == "out",
        _message.c.status == MessageStatus.QUEUED,
        _message.c.next_attempt_at <= sa.bindparam("now", type_=_message.c.next_attempt_at.type),
        sa.or_(one_of(_message.c.message_key, SAFETY_KEYS), ~_BLOCKED),  # keep each person's routine texts in order
    )
    .order_by(sa.case((one_of(_message.c.message_key, VITAL_KEYS), 0), else_=1), _message.c.id)
    .limit(sa.bindparam("limit", type_=sa.Integer))
)
_FOR_PARTICIPANT = _message.c.participant_id == sa.bindparam("participant_id")


def _candidate_queries(dialect: str) -> dict[tuple[bool, bool], Prepared]:
    """The due-texts statement for each combination of filters (`only` some messages, for one
    participant). `only`: due texts to those messages' phones, so anything older still queued for
    the same people goes first (or is withdrawn), keeping order. Every message has a phone, so its
    own phone finds it (by the phone and status index, not a scan of the queue)."""
    phones = sa.select(_message.c.phone).where(among_param(_message.c.id, "only", dialect))
    due_only = _DUE.where(_message.c.phone.in_(phones))
    return {
        (False, False): Prepared(_DUE),
        (True, False): Prepared(due_only),
        (False, True): Prepared(_DUE.where(_FOR_PARTICIPANT)),
        (True, True): Prepared(due_only.where(_FOR_PARTICIPANT)),
    }


# Statements built once per database: these run for every text sent.
_CANDIDATES = {dialect: _candidate_queries(dialect) for dialect in ("sqlite", "postgresql")}


def due_candidates(
    db: Session, now: datetime, only: list[int] | None, limit: int, participant_id: int | None = None
) -> list[int]:
    query = _CANDIDATES[db.get_bind().dialect.name][only is not None, participant_id is not None]
    params: dict[str, object] = {"now": now, "limit": limit}
    if only is not None:
        params["only"] = only
    if participant_id is not None:
        params["participant_id"] = participant_id
    return [i for i in query.run(db, params).scalars() if i is not None]


@dataclass
class Claimed:
    """What sending a claimed message needs (read with the claim, not as a whole ORM object)."""

    id: int
    phone: str
    body: str
    segments: int


@dataclass
class _Hours:
    timezone: str
    allowed_from: str | None
    allowed_until: str | None
    contact_windows: str | None = None


# The message and what decides whether it may go, in one statement; only the message row is locked.
_CLAIM = (
    sa.select(
        _message.c.id,
        _message.c.status,
        _message.c.phone,
        _message.c.body,
        _message.c.segments,
        _message.c.message_key,
        _message.c.at,
        _message.c.expires_at,
        _message.c.automated,
        _message.c.participant_id,
        _participant.c.opted_out,
        _participant.c.unreachable,
        _participant.c.last_inbound_at,
        _participant.c.sms_consent,
        _participant.c.service_id,
        _participant.c.timezone,
        _participant.c.allowed_from,
        _participant.c.allowed_until,
        _participant.c.contact_windows,
    )
    .select_from(_message.outerjoin(_participant, _participant.c.id == _message.c.participant_id))
    .where(_message.c.id == sa.bindparam("id"))
)
_CLAIM_BY = {"sqlite": Prepared(_CLAIM), "postgresql": Prepared(_CLAIM.with_for_update(skip_locked=True, of=_message))}
_UPDATE = _message.update().where(_message.c.id == sa.bindparam("message_id"))
_WITHHOLD = Prepared(_UPDATE.values(status=sa.bindparam("new_status"), error_message=sa.bindparam("reason")))
_HOLD_UNTIL = Prepared(_UPDATE.values(next_attempt_at=sa.bindparam("until", type_=_message.c.next_attempt_at.type)))
_SENDING = Prepared(
    _UPDATE.values(
        status=MessageStatus.SENDING,
        claimed_at=sa.bindparam("moment", type_=_message.c.claimed_at.type),
        attempts=_message.c.attempts + 1,
    )
)
# Undoes `_SENDING` for a claim that was never handed to the provider.
_RELEASE = (
    _message.update()
    .where(_message.c.id.in_(sa.bindparam("ids", expanding=True)), _message.c.status == MessageStatus.SENDING)
    .values(status=MessageStatus.QUEUED, claimed_at=None, attempts=_message.c.attempts - 1)
)


def _claim_in(db: Session, message_id: int, now: datetime) -> Claimed | None:
    row = _CLAIM_BY[db.get_bind().dialect.name].run(db, {"id": message_id}).first()
    if row is None or row.status != MessageStatus.QUEUED:
        return None
    known = row.participant_id is not None and row.opted_out is not None
    reason = None
    if row.expires_at and now > row.expires_at:
        reason = "expired"
    elif known and row.opted_out and row.message_key not in OPT_IN_KEYS | VITAL_KEYS:
        reason = "opted_out"
    elif known and row.unreachable and row.message_key not in VITAL_KEYS and not _just_texted(row):
        reason = "unreachable"
    elif known and not row.sms_consent and row.message_key not in VITAL_KEYS:
        reason = "no_consent"
    if reason:
        status = MessageStatus.EXPIRED if reason == "expired" else MessageStatus.SUPPRESSED
        _WITHHOLD.run(db, {"message_id": message_id, "new_status": status, "reason": reason})
        return None
    if row.automated and known:
        # A retry can drift into quiet hours: hold it until texts may arrive again.
        hours = _Hours(row.timezone, row.allowed_from, row.allowed_until, row.contact_windows)
        allowed = next_allowed(now, hours, for_service(db, row.service_id))
        if allowed > now:
            if row.expires_at and allowed >= row.expires_at:
                _WITHHOLD.run(
                    db, {"message_id": message_id, "new_status": MessageStatus.EXPIRED, "reason": "quiet_hours"}
                )
            else:
                _HOLD_UNTIL.run(db, {"message_id": message_id, "until": allowed})
            return None
    _SENDING.run(db, {"message_id": message_id, "moment": now})
    return Claimed(id=row.id, phone=row.phone, body=row.body, segments=row.segments)


def _just_texted(row: sa.Row[Any]) -> bool:
    """The person texted from this number after the message was written, or just before: a reply."""
    return bool(row.last_inbound_at and row.at and row.last_inbound_at >= row.at - JUST_TEXTED)


# Texts still queued for the same phones that a unit's claim may take first, keeping their order.
BEHIND_AT_MOST = 20


@dataclass
class Booked:
    """A message claimed and given its slot in the shared sending pace: it may go at `start`."""

    message: Claimed
    start: float


def claim_in_unit(db: Session, rt: Runtime, ids: list[int], now: datetime) -> list[Booked]:
    """Claim texts just written in the caller's unit of work, and book their slots, so they go the
    moment it commits with no transaction of their own. Call it last in the unit: the pace's row
    stays locked until the unit ends. A text behind an earlier one to the same phone stays queued;
    the send that frees it takes it. A crash after commit leaves them claimed, so they are settled
    with the provider's record (`reconcile.py`), never resent blind."""
    if not ids:
        return []
    pacer = pacer_for(rt)
    due = due_candidates(db, now, ids, limit=len(ids) + BEHIND_AT_MOST)
    return [booked for i in due if (booked := claim_and_book(db, pacer, i, now)) is not None]


def claim_and_book(db: Session, pacer: Pacer, message_id: int, now: datetime) -> Booked | None:
    """Claim a message and book its slot in the shared pace, in one transaction; None if it may not go."""
    claimed = _claim_in(db, message_id, now)
    return None if claimed is None else Booked(claimed, pacer.reserve(db, claimed.segments))


def release(rt: Runtime, booked: list[Booked]) -> None:
    """Put claimed texts that were never given to the provider back in the queue, as they were."""
    ids = [b.message.id for b in booked]
    if ids:
        with transaction(rt.engine) as db:
            db.execute(_RELEASE, {"ids": ids})


def pacer_for(rt: Runtime) -> Pacer:
    """The shared pace for this runtime's senders: the rate per number times the numbers."""
    return Pacer(rt.settings.send_rate * max(1, getattr(rt.transport, "senders", 1)))
