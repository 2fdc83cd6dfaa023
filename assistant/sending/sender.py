"""Delivering the outbox: claim, send, record. Safe to run in several processes at once.

A message is claimed (queued -> sending, `claims.py`) in a committed transaction before the
provider is called, so two senders never send the same row. A row left in
`sending` by a crash is reconciled with the provider's record (`reconcile.py`), not blindly resent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from assistant.db.driver import Prepared
from assistant.db.models import Message, MessageStatus, StatusEvent, table
from assistant.db.units import queued, transaction
from assistant.runtime import Runtime
from assistant.sending.claims import Booked, claim_and_book, due_candidates, pacer_for, release
from assistant.sending.failures import VITAL_KEYS, mark_number_problem, signposting_not_delivered
from assistant.sending.status import apply_pending_status_events
from assistant.transports import SendResult

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6


def backoff(attempt: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** (attempt - 1), 3600))


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    withheld: int = 0


_message, _status_event = table(Message), table(StatusEvent)
_UPDATE = _message.update().where(_message.c.id == sa.bindparam("message_id"))
# Recorded as sent, and in the same statement whether a status callback for its sid came first
# (before we knew the sid): those wait to be applied now.
_SENT = Prepared(
    _UPDATE.values(
        status=MessageStatus.SENT,
        provider_sid=sa.bindparam("sid"),
        sent_at=sa.bindparam("moment", type_=_message.c.sent_at.type),
    ).returning(
        sa.exists()
        .where(_status_event.c.provider_sid == sa.bindparam("sid"), _status_event.c.applied.is_(False))
        .label("callback_first")
    )
)


# A sending pass claims this many texts in one transaction (recording the results of the ones
# before), as long as their slots start within this many seconds: each text does not cost a
# transaction of its own, and claims stay minutes short of `reconcile.STALE_CLAIM`.
CLAIMED_TOGETHER = 20
CLAIMED_AHEAD = 1.0


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
            self.record_then_claim()
        return self.ready.pop(0) if self.ready else None

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
                due = due_candidates(db, self.now, self.only, self.limit, self.participant_id)
                self.batch.extend(i for i in due if i not in self.tried)
                if not self.batch:
                    return None
            message_id = self.batch.pop(0)
            self.tried.add(message_id)
            booked = claim_and_book(db, self.pacer, message_id, self.now)
            if booked is not None:
                return booked
            self.report.withheld += 1


def _record_in(db: Session, message_id: int, result: SendResult, now: datetime) -> str:
    if result.ok:
        callback_first = _SENT.run(db, {"message_id": message_id, "sid": result.sid, "moment": now}).scalar_one()
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
