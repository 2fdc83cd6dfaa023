"""Delivering the outbox: claim, send, record. Safe to run in several processes at once.

A message is claimed (queued -> sending) in a committed transaction before the
provider is called, so two senders never send the same row. A row left in
`sending` by a crash is reconciled with the provider's record (`reconcile.py`), not blindly resent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from assistant.care.quiet import next_allowed
from assistant.db.driver import Prepared
from assistant.db.models import Message, MessageStatus, table
from assistant.db.outbox_statements import CLAIM_BY, HOLD_UNTIL, RELEASE, SENDING, SENT, WITHHOLD
from assistant.db.send_pace import Pacer
from assistant.db.service_settings import for_service
from assistant.db.units import among_param, one_of, queued, transaction
from assistant.outbox.writer import OPT_IN_KEYS
from assistant.runtime import Runtime
from assistant.sending.failures import VITAL_KEYS, mark_number_problem, signposting_not_delivered
from assistant.sending.status import apply_pending_status_events
from assistant.transports import SendResult

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
# Never held back behind an earlier message to the same phone (one waiting out a retry, or left mid-send
# by a crash until it is reconciled): safety texts go at once. Routine texts keep their order.
SAFETY_KEYS = VITAL_KEYS | {"staff/urgent_flag"}
# A message written this soon after the person last texted (or before they did) goes to a number that
# evidently reaches a phone: a mark of "unreachable" never holds it back.
JUST_TEXTED = timedelta(minutes=10)


def backoff(attempt: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** (attempt - 1), 3600))


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    withheld: int = 0


_message = table(Message)
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


def _candidates(
    db: Session, now: datetime, only: list[int] | None, limit: int, participant_id: int | None = None
) -> list[int]:
    query, params = _candidates_query(db.get_bind().dialect.name, now, only, limit, participant_id)
    return [i for i in query.run(db, params).scalars() if i is not None]


def _candidates_query(
    dialect: str, now: datetime, only: list[int] | None, limit: int, participant_id: int | None
) -> tuple[Prepared, dict[str, object]]:
    params: dict[str, object] = {"now": now, "limit": limit}
    if only is not None:
        params["only"] = only
    if participant_id is not None:
        params["participant_id"] = participant_id
    return _CANDIDATES[dialect][only is not None, participant_id is not None], params


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


def _claim_in(db: Session, message_id: int, now: datetime) -> Claimed | None:
    row = CLAIM_BY[db.get_bind().dialect.name].run(db, {"id": message_id}).first()
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
        WITHHOLD.run(db, {"message_id": message_id, "new_status": status, "reason": reason})
        return None
    if row.automated and known:
        # A retry can drift into quiet hours: hold it until texts may arrive again.
        hours = _Hours(row.timezone, row.allowed_from, row.allowed_until, row.contact_windows)
        allowed = next_allowed(now, hours, for_service(db, row.service_id))
        if allowed > now:
            if row.expires_at and allowed >= row.expires_at:
                WITHHOLD.run(
                    db, {"message_id": message_id, "new_status": MessageStatus.EXPIRED, "reason": "quiet_hours"}
                )
            else:
                HOLD_UNTIL.run(db, {"message_id": message_id, "until": allowed})
            return None
    SENDING.run(db, {"message_id": message_id, "moment": now})
    return Claimed(id=row.id, phone=row.phone, body=row.body, segments=row.segments)


def _just_texted(row: sa.Row[Any]) -> bool:
    """The person texted from this number after the message was written, or just before: a reply."""
    return bool(row.last_inbound_at and row.at and row.last_inbound_at >= row.at - JUST_TEXTED)


# Texts still queued for the same phones that a unit's claim may take first, keeping their order.
BEHIND_AT_MOST = 20
# A sending pass claims this many texts in one transaction (recording the results of the ones
# before), as long as their slots start within this many seconds: each text does not cost a
# transaction of its own, and claims stay minutes short of `reconcile.STALE_CLAIM`.
CLAIMED_TOGETHER = 20
CLAIMED_AHEAD = 1.0


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
    due = _candidates(db, now, ids, limit=len(ids) + BEHIND_AT_MOST)
    return [booked for i in due if (booked := _claim_and_book(db, pacer, i, now)) is not None]


def _claim_and_book(db: Session, pacer: Pacer, message_id: int, now: datetime) -> Booked | None:
    """Claim a message and book its slot in the shared pace, in one transaction; None if it may not go."""
    claimed = _claim_in(db, message_id, now)
    return None if claimed is None else Booked(claimed, pacer.reserve(db, claimed.segments))


def release(rt: Runtime, booked: list[Booked]) -> None:
    """Put claimed texts that were never given to the provider back in the queue, as they were."""
    ids = [b.message.id for b in booked]
    if ids:
        with transaction(rt.engine) as db:
            db.execute(RELEASE, {"ids": ids})


def send_due(
    rt: Runtime,
    now: datetime,
    *,
    only: list[int] | None = None,
    limit: int = 500,
    participant_id: int | None = None,
    booked: list[Booked] | None = None,
) -> SendReport:
    """Send what is due. Each message is claimed in a committed transaction before the provider is
    called; the transaction that records the results claims the next few (`CLAIMED_TOGETHER`), so
    a handful of texts cost one transaction between them.
    `booked` are messages the caller's unit claimed already (`claim_in_unit`): they go first."""
    sending = _Pass(rt, now, only, limit, participant_id, booked or [])
    try:
        current = sending.next()
        while current is not None:
            sending.pacer.wait_for(current.start)
            result = rt.transport.send(
                to=current.message.phone,
                body=current.message.body,
                key=f"out-{current.message.id}",
                status_callback=rt.status_callback_url() if rt.transport.name == "twilio" else None,
            )
            sending.results.append((current.message.id, result))
            current = sending.next()
    except BaseException:
        sending.keep_results()  # given to the provider: their results are kept whatever went wrong
        release(rt, sending.ready)  # booked and never handed to the provider: the next sender takes them
        raise
    return sending.report


class _Pass:
    """One pass of a sender: what goes next (booked messages first, then each claimed in turn), and its report."""

    def __init__(
        self,
        rt: Runtime,
        now: datetime,
        only: list[int] | None,
        limit: int,
        participant_id: int | None,
        booked: list[Booked],
    ) -> None:
        self.rt, self.now, self.limit, self.participant_id = rt, now, limit, participant_id
        self.only = list(only) if only is not None else None
        self.ready = list(booked)
        self.tried: set[int] = {b.message.id for b in booked}
        self.batch: list[int] = []
        self.results: list[tuple[int, SendResult]] = []  # sent, not yet recorded
        self.report = SendReport()
        self.pacer = pacer_for(rt)

    def next(self) -> Booked | None:
        """A text claimed already, or else the next few claimed now in the transaction that records
        the results so far: texts claimed together go one after another and cost one transaction."""
        if not self.ready:
            if not self.results and not self._anything_to_claim():
                return None  # no unit of work (on SQLite, no write lock) for a pass with nothing to do
            self.record_then_claim()
        return self.ready.pop(0) if self.ready else None

    def _anything_to_claim(self) -> bool:
        """Whether a claim could find anything, read without a unit of work: most of the clock's
        passes find nothing. (A text written after this read is the next pass's, or its writer's.)"""
        if self.batch:
            return True
        if len(self.tried) >= self.limit:
            return False
        engine = self.rt.engine
        query, params = _candidates_query(engine.dialect.name, self.now, self.only, self.limit, self.participant_id)
        return any(i is not None and i not in self.tried for i in query.read(engine, params).scalars())

    def record_then_claim(self) -> None:
        """Record the sends' results; in the same transaction, claim the next few messages. If it
        fails, the results stay here for `keep_results` and nothing is taken as claimed."""
        with transaction(self.rt.engine) as db:
            outcomes = [_record_in(db, message_id, result, self.now) for message_id, result in self.results]
            if self.only is not None:
                self.only += queued(db).texts  # a failure told the duty contact: that text goes now too
            claimed = self._claim_more(db)
        self.results = []
        self.ready = claimed  # only once committed: `release` must never touch another sender's claim
        for outcome in outcomes:
            setattr(self.report, outcome, getattr(self.report, outcome) + 1)

    def keep_results(self) -> None:
        """Record the results not yet recorded, each on its own: one that fails does not lose the rest."""
        results, self.results = self.results, []
        for message_id, result in results:
            try:
                with transaction(self.rt.engine) as db:
                    _record_in(db, message_id, result, self.now)
            except Exception:
                log.exception("could not record a send's result: message=%s", message_id)

    def _claim_more(self, db: Session) -> list[Booked]:
        """Up to `CLAIMED_TOGETHER` messages, while their slots in the pace start within
        `CLAIMED_AHEAD` seconds: a sender that dies leaves few claims for `reconcile.py` to settle,
        none of them old enough to be taken for a dead sender's while this one still waits to send."""
        # The statements below read the database directly (no autoflush): write out what recording
        # a failure changed first (a retry, a withdrawn outbox), so nothing stale is claimed.
        db.flush()
        claimed: list[Booked] = []
        while len(claimed) < CLAIMED_TOGETHER:
            booked = self._claim_next(db, look_again=not claimed)
            if booked is None:
                break
            claimed.append(booked)
            if booked.start > self.pacer.clock() + CLAIMED_AHEAD:
                break
        return claimed

    def _claim_next(self, db: Session, *, look_again: bool) -> Booked | None:
        while True:
            if not self.batch:
                # Sending (or withholding) one message can free the next one queued behind it for
                # the same person: when a batch is done, look again (once those claimed are sent)
                # until nothing new is due.
                if not look_again or len(self.tried) >= self.limit:
                    return None
                due = _candidates(db, self.now, self.only, self.limit, self.participant_id)
                self.batch.extend(i for i in due if i not in self.tried)
                if not self.batch:
                    return None
            message_id = self.batch.pop(0)
            self.tried.add(message_id)
            booked = _claim_and_book(db, self.pacer, message_id, self.now)
            if booked is not None:
                return booked
            self.report.withheld += 1


def _record_in(db: Session, message_id: int, result: SendResult, now: datetime) -> str:
    if result.ok:
        callback_first = SENT.run(db, {"message_id": message_id, "sid": result.sid, "moment": now}).scalar_one()
        if result.sid and callback_first:
            sent = db.get(Message, message_id)
            assert sent is not None
            apply_pending_status_events(db, sent)
        return "sent"
    message = db.get(Message, message_id)
    assert message is not None
    message.error_code = result.error_code
    message.error_message = result.error_message
    if result.transient and message.attempts < MAX_ATTEMPTS:
        message.status = MessageStatus.QUEUED
        message.next_attempt_at = now + backoff(message.attempts)
        db.add(message)
        return "retried"
    message.status = MessageStatus.FAILED
    db.add(message)
    if message.message_key in VITAL_KEYS:
        signposting_not_delivered(db, message, result.error_code, now)
    if message.participant_id and result.error_code:
        mark_number_problem(db, message.participant_id, result.error_code, now, message.id)
    log.warning("send failed: message=%s code=%s", message.id, result.error_code)
    return "failed"


def pacer_for(rt: Runtime) -> Pacer:
    """The shared pace for this runtime's senders: the rate per number times the numbers."""
    return Pacer(rt.settings.send_rate * max(1, getattr(rt.transport, "senders", 1)))
