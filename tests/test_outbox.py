"""The outbox: retries with backoff, permanent failures, validity windows, order, and crash recovery.

Twilio is the edge of this machine: the failure modes it reports are played by a
scripted transport here (the real REST shape is checked against the API mock in
test_twilio_api.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from assistant.contact.settings_change import change_settings
from assistant.conversation.inbound import Received, receive_sms
from assistant.db.models import Flag, Message, Participant, Service
from assistant.db.send_pace import Pacer
from assistant.db.units import transaction
from assistant.imports.caseload import import_caseload
from assistant.outbox.writer import queue_sms, withdraw_outbox
from assistant.runtime import Runtime
from assistant.sending import sender
from assistant.sending.reconcile import STALE_CLAIM, reconcile_stale
from assistant.sending.sender import SendReport, send_due
from assistant.transports import SendResult

from .conftest import outbound


@dataclass
class ScriptedTwilio:
    """Answers sends from a script of results; records what it was asked to send."""

    results: list[SendResult] = field(default_factory=list)
    sent: list[tuple[str, str]] = field(default_factory=list)
    known: dict[str, str] = field(default_factory=dict)
    name: str = "scripted"

    def send(self, *, to: str, body: str, key: str, status_callback: str | None) -> SendResult:
        result = (
            self.results.pop(0)
            if self.results
            else SendResult(ok=True, sid=f"SM{len(self.sent):032d}", status="queued")
        )
        if result.ok:
            self.sent.append((to, body))
            self.known[key] = result.sid or ""
        return result

    def lookup(self, *, to: str, body: str, key: str, since: datetime) -> str | None:
        return self.known.get(key)


def _setup(rt: Runtime, caseload_file: Path, transport: ScriptedTwilio) -> Participant:
    import_caseload(rt, caseload_file, rt.clock.now())
    rt.transport = transport
    with transaction(rt.engine) as db:
        return db.exec(select(Participant).where(Participant.external_id == "P001")).one()


def _crisis_text(
    rt: Runtime, caseload_file: Path, twilio: ScriptedTwilio, sid_digit: str, *, claim: bool
) -> tuple[Participant, datetime, Received]:
    """Alex, with a duty contact set, texts a crisis: the signposting and the duty text are written."""
    person = _setup(rt, caseload_file, twilio)
    with transaction(rt.engine) as db:
        service = db.get(Service, person.service_id)
        assert service is not None
        duty = {"duty_contact_email": "duty@service.example", "duty_contact_phone": "+447700900999"}
        change_settings(db, service, duty, by="admin@example.org", now=rt.clock.now())
    now = rt.clock.now()
    text = "I want to end my life"
    received = receive_sms(rt, sid="SM" + sid_digit * 32, sender=person.phone, body=text, now=now, claim=claim)
    return person, now, received


def _queue(rt: Runtime, participant: Participant, key: str = "common/help", **kwargs: object) -> int:
    with transaction(rt.engine) as db:
        return queue_sms(db, rt, participant, key, rt.clock.now(), **kwargs)  # type: ignore[arg-type]


def test_transient_failure_is_retried_with_backoff(rt: Runtime, caseload_file: Path) -> None:
    twilio = ScriptedTwilio([SendResult(ok=False, error_code="20429", transient=True)])
    person = _setup(rt, caseload_file, twilio)
    _queue(rt, person)
    now = rt.clock.now()
    assert send_due(rt, now).retried == 1
    assert send_due(rt, now + timedelta(seconds=10)).sent == 0  # still backing off
    assert send_due(rt, now + timedelta(seconds=31)).sent == 1
    [message] = outbound(rt)
    assert (message.status, message.attempts, len(twilio.sent)) == ("sent", 2, 1)


def test_permanent_failure_stops_sends_and_flags(rt: Runtime, caseload_file: Path) -> None:
    twilio = ScriptedTwilio([SendResult(ok=False, error_code="21614", error_message="not a mobile")])
    person = _setup(rt, caseload_file, twilio)
    _queue(rt, person)
    _queue(rt, person, "common/call_ack")
    now = rt.clock.now()
    send_due(rt, now)
    send_due(rt, now)
    assert [m.status for m in outbound(rt)] == ["failed", "cancelled"]
    assert twilio.sent == []
    with transaction(rt.engine) as db:
        assert db.get(Participant, person.id).unreachable  # type: ignore[union-attr]
        [flag] = db.exec(select(Flag)).all()
        assert (flag.kind, flag.severity) == ("unreachable", "action")


def test_carrier_opt_out_error_marks_opted_out(rt: Runtime, caseload_file: Path) -> None:
    twilio = ScriptedTwilio([SendResult(ok=False, error_code="21610")])
    person = _setup(rt, caseload_file, twilio)
    _queue(rt, person)
    send_due(rt, rt.clock.now())
    with transaction(rt.engine) as db:
        assert db.get(Participant, person.id).opted_out  # type: ignore[union-attr]


def test_expired_message_is_never_sent(rt: Runtime, caseload_file: Path) -> None:
    twilio = ScriptedTwilio()
    person = _setup(rt, caseload_file, twilio)
    _queue(rt, person, valid_for=timedelta(hours=1))
    send_due(rt, rt.clock.now() + timedelta(hours=2))
    assert [m.status for m in outbound(rt)] == ["expired"] and twilio.sent == []


def test_each_persons_messages_go_in_order(rt: Runtime, caseload_file: Path) -> None:
    twilio = ScriptedTwilio([SendResult(ok=False, error_code="network", transient=True)])
    person = _setup(rt, caseload_file, twilio)
    first = _queue(rt, person, "common/help")
    _queue(rt, person, "common/call_ack")
    now = rt.clock.now()
    send_due(rt, now)  # the first fails for now; the second must wait behind it
    assert twilio.sent == []
    send_due(rt, now + timedelta(minutes=1))
    assert next(body for _, body in twilio.sent).startswith("This number is for texts")
    assert len(twilio.sent) == 2
    assert outbound(rt)[0].id == first


def test_sending_twice_sends_once(rt: Runtime, caseload_file: Path) -> None:
    twilio = ScriptedTwilio()
    person = _setup(rt, caseload_file, twilio)
    ids = [_queue(rt, person)]
    now = rt.clock.now()
    send_due(rt, now, only=ids)
    send_due(rt, now, only=ids)
    send_due(rt, now)
    assert len(twilio.sent) == 1


def test_crash_mid_send_is_reconciled_not_resent(rt: Runtime, caseload_file: Path) -> None:
    twilio = ScriptedTwilio()
    person = _setup(rt, caseload_file, twilio)
    sent_id = _queue(rt, person)
    unsent_id = _queue(rt, person, "common/call_ack")
    now = rt.clock.now()
    # Both were claimed; the provider took the first, then the process died.
    twilio.known[f"out-{sent_id}"] = "SMprovider"
    with transaction(rt.engine) as db:
        for message in db.exec(select(Message).where(col(Message.id).in_([sent_id, unsent_id]))).all():
            message.status, message.claimed_at, message.attempts = "sending", now, 1
            db.add(message)
    assert reconcile_stale(rt, now + STALE_CLAIM / 2) == (0, 0)  # may still be in flight
    assert reconcile_stale(rt, now + STALE_CLAIM * 2) == (2, 0)
    send_due(rt, now + STALE_CLAIM * 2)
    first, second = outbound(rt)
    assert (first.status, first.provider_sid) == ("sent", "SMprovider")
    assert second.status == "sent"
    assert len(twilio.sent) == 1  # only the one the provider never had


def test_an_automated_retry_waits_out_quiet_hours(rt: Runtime, caseload_file: Path) -> None:
    from datetime import UTC

    twilio = ScriptedTwilio([SendResult(ok=False, error_code="network", transient=True)] * 5)
    person = _setup(rt, caseload_file, twilio)
    evening = datetime(2026, 11, 23, 19, 58, tzinfo=UTC)
    rt.clock.set(evening)  # type: ignore[attr-defined]
    _queue(rt, person, automated=True, valid_for=timedelta(days=2))
    send_due(rt, evening)  # fails; the retry would land at 20:00 or later: quiet
    send_due(rt, evening + timedelta(minutes=5))
    [message] = outbound(rt)
    assert message.status == "queued" and message.attempts == 1
    assert message.next_attempt_at == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    twilio.results.clear()
    send_due(rt, datetime(2026, 11, 24, 8, 0, tzinfo=UTC))
    assert outbound(rt)[0].status == "sent"


def _stuck(rt: Runtime, message_id: int, now: datetime) -> None:
    """Claimed, then the process died before the provider answered."""
    with transaction(rt.engine) as db:
        message = db.get(Message, message_id)
        assert message is not None
        message.status, message.claimed_at, message.attempts = "sending", now, 1
        db.add(message)


def test_a_stuck_message_never_holds_back_a_crisis_reply(rt: Runtime, caseload_file: Path) -> None:
    twilio = ScriptedTwilio()
    person = _setup(rt, caseload_file, twilio)
    now = rt.clock.now()
    stuck = _queue(rt, person, "checkin/ask_week")
    _stuck(rt, stuck, now)
    routine = _queue(rt, person, "common/help")
    received = receive_sms(rt, sid="SM" + "1" * 32, sender=person.phone, body="I want to end my life", now=now)
    [crisis] = received.outbox
    assert send_due(rt, now, only=received.outbox).sent == 1
    assert [body for _, body in twilio.sent] == [_body(rt, crisis)]
    assert _body(rt, crisis).startswith("Alex, if you feel you might act on these thoughts")
    assert _status(rt, stuck, routine, crisis) == ["sending", "queued", "sent"]  # routine texts keep their order
    # The stuck one is reconciled as usual: the provider never had it, so it goes once, then the routine one.
    reconcile_stale(rt, now + STALE_CLAIM * 2)
    send_due(rt, now + STALE_CLAIM * 2)
    assert _status(rt, stuck, routine, crisis) == ["sent", "sent", "sent"]
    assert len(twilio.sent) == 3 and len(set(twilio.known)) == 3  # each message once


def test_the_person_at_risk_hears_first_whichever_sender_takes_the_texts(rt: Runtime, caseload_file: Path) -> None:
    """The duty contact's text about a crisis is written before the signposting; the clock's own
    pass over everything due (not only the reply's dispatcher) still sends the signposting first."""
    twilio = ScriptedTwilio()
    person, now, received = _crisis_text(rt, caseload_file, twilio, "2", claim=False)
    assert len(received.outbox) >= 2, received
    assert send_due(rt, now).sent == len(received.outbox)
    assert twilio.sent[0][0] == person.phone and twilio.sent[0][1].startswith("Alex, if you feel you might act")
    assert any(to != person.phone for to, _ in twilio.sent[1:])  # the duty contact's text went after it


def test_the_duty_contacts_urgent_text_is_not_held_behind_a_stuck_one(rt: Runtime, caseload_file: Path) -> None:
    twilio = ScriptedTwilio()
    _setup(rt, caseload_file, twilio)
    now = rt.clock.now()
    ids = []
    with transaction(rt.engine) as db:
        for key in ("staff/urgent_flag", "staff/urgent_flag"):
            message = Message(
                direction="out",
                body="Participant assistant: urgent flag. Please check the dashboard now.",
                at=now,
                status="queued",
                message_key=key,
                phone="+447700900999",
                next_attempt_at=now,
            )
            db.add(message)
            db.flush()
            assert message.id is not None
            ids.append(message.id)
    _stuck(rt, ids[0], now)
    send_due(rt, now)
    assert _status(rt, *ids) == ["sending", "sent"]


def test_withdrawing_named_texts_cancels_only_those_still_waiting(rt: Runtime, caseload_file: Path) -> None:
    """Given message ids, the outbox withdraws those of them still queued and leaves the rest."""
    participant = _setup(rt, caseload_file, ScriptedTwilio())
    first, second, kept = (_queue(rt, participant) for _ in range(3))
    with transaction(rt.engine) as db:
        gone = db.get(Message, second)
        assert gone is not None
        gone.status = "sent"
        db.add(gone)
    with transaction(rt.engine) as db:
        assert withdraw_outbox(db, reason="campaign cancelled", message_ids=[first, second]) == 1
    assert _status(rt, first, second, kept) == ["cancelled", "sent", "queued"]
    with transaction(rt.engine) as db:
        message = db.get(Message, first)
        assert message is not None and message.error_message == "campaign cancelled"


def _body(rt: Runtime, message_id: int) -> str:
    with transaction(rt.engine) as db:
        message = db.get(Message, message_id)
        assert message is not None
        return message.body


def _status(rt: Runtime, *ids: int) -> list[str]:
    with transaction(rt.engine) as db:
        return [db.get(Message, i).status for i in ids]  # type: ignore[union-attr]


def test_replies_claimed_in_the_inbound_unit_go_once_in_order(rt: Runtime, caseload_file: Path) -> None:
    """The webhook's unit claims its replies as it commits; they are sent with no claim of their own."""
    twilio = ScriptedTwilio()
    person, now, received = _crisis_text(rt, caseload_file, twilio, "3", claim=True)
    assert len(received.outbox) >= 2 and {b.message.id for b in received.booked} == set(received.outbox)
    assert {m.status for m in outbound(rt)} == {"sending"}, "claimed in the unit, before any send"
    assert all(m.claimed_at == now and m.attempts == 1 for m in outbound(rt))
    report = send_due(rt, now, only=received.outbox, booked=received.booked)
    assert report.sent == len(received.outbox) and {m.status for m in outbound(rt)} == {"sent"}
    assert twilio.sent[0][0] == person.phone and twilio.sent[0][1].startswith("Alex, if you feel you might act")
    assert len(twilio.sent) == len(set(twilio.known)) == len(received.outbox)  # each once
    assert send_due(rt, now).sent == 0 and len(twilio.sent) == len(received.outbox)


def test_a_reply_behind_a_queued_one_is_not_claimed_but_follows_it(rt: Runtime, caseload_file: Path) -> None:
    twilio = ScriptedTwilio()
    person = _setup(rt, caseload_file, twilio)
    now = rt.clock.now()
    earlier = _queue(rt, person, "checkin/ask_week")
    received = receive_sms(rt, sid="SM" + "4" * 32, sender=person.phone, body="help", now=now, claim=True)
    [reply] = received.outbox
    assert [b.message.id for b in received.booked] == [earlier], "the earlier text is taken first, the reply waits"
    assert _status(rt, earlier, reply) == ["sending", "queued"]
    assert send_due(rt, now, only=received.outbox, booked=received.booked).sent == 2
    assert [body for _, body in twilio.sent] == [_body(rt, earlier), _body(rt, reply)]


def test_claimed_replies_left_by_a_crash_are_settled_not_resent_blind(rt: Runtime, caseload_file: Path) -> None:
    twilio = ScriptedTwilio()
    person = _setup(rt, caseload_file, twilio)
    now = rt.clock.now()
    received = receive_sms(rt, sid="SM" + "5" * 32, sender=person.phone, body="help", now=now, claim=True)
    [reply] = received.outbox
    # The process died after the unit committed, before the dispatcher sent anything.
    assert send_due(rt, now).sent == 0 and _status(rt, reply) == ["sending"], "a claimed reply went twice"
    reconcile_stale(rt, now + STALE_CLAIM * 2)
    assert send_due(rt, now + STALE_CLAIM * 2).sent == 1
    assert _status(rt, reply) == ["sent"] and len(twilio.sent) == 1


def test_claimed_replies_a_failed_pass_never_sent_go_back_in_the_queue(rt: Runtime, caseload_file: Path) -> None:
    class Down(ScriptedTwilio):
        def send(self, *, to: str, body: str, key: str, status_callback: str | None) -> SendResult:
            if not self.sent:
                super().send(to=to, body=body, key=key, status_callback=status_callback)
                raise ConnectionError("provider connection dropped after accepting it")
            return super().send(to=to, body=body, key=key, status_callback=status_callback)

    twilio = Down()
    _person, now, received = _crisis_text(rt, caseload_file, twilio, "6", claim=True)
    first, *rest = received.booked
    assert rest, received
    with pytest.raises(ConnectionError):  # the provider's failure is not swallowed
        send_due(rt, now, only=received.outbox, booked=received.booked)
    # The one handed to the provider waits for reconciling; the ones never handed over are queued as before.
    assert _status(rt, first.message.id) == ["sending"]
    assert _status(rt, *(b.message.id for b in rest)) == ["queued"] * len(rest)
    assert all(m.attempts == 0 and m.claimed_at is None for m in outbound(rt) if m.id != first.message.id)
    assert send_due(rt, now).sent == len(rest)
    reconcile_stale(rt, now + STALE_CLAIM * 2)
    assert _status(rt, *received.outbox) == ["sent"] * len(received.outbox)
    assert len(twilio.sent) == len(received.outbox)  # the provider had the first: it was not sent again


def test_texts_claimed_together_are_recorded_in_one_transaction(rt: Runtime, caseload_file: Path) -> None:
    twilio = ScriptedTwilio()
    _person, now, received = _crisis_text(rt, caseload_file, twilio, "7", claim=True)
    assert len(received.booked) >= 2, received
    begun: list[object] = []

    def on_begin(connection: object) -> None:
        begun.append(connection)

    sa.event.listen(rt.engine, "begin", on_begin)
    try:
        report = send_due(rt, now, only=received.outbox, booked=received.booked)
    finally:
        sa.event.remove(rt.engine, "begin", on_begin)
    assert report.sent == len(received.booked) and _status(rt, *received.outbox) == ["sent"] * len(received.outbox)
    assert len(begun) == 1, f"{len(received.booked)} results took {len(begun)} transactions"


def test_results_of_a_burst_are_kept_when_a_later_send_fails(rt: Runtime, caseload_file: Path) -> None:
    class DropsTheSecond(ScriptedTwilio):
        def send(self, *, to: str, body: str, key: str, status_callback: str | None) -> SendResult:
            result = super().send(to=to, body=body, key=key, status_callback=status_callback)
            if len(self.sent) == 2:
                raise ConnectionError("provider connection dropped after accepting it")
            return result

    twilio = DropsTheSecond()
    _person, now, received = _crisis_text(rt, caseload_file, twilio, "8", claim=True)
    first, second, *rest = received.booked
    with pytest.raises(ConnectionError):  # the provider's failure is not swallowed
        send_due(rt, now, only=received.outbox, booked=received.booked)
    # The first went and its result is on record; the second waits for reconciling; the rest are queued.
    assert _status(rt, first.message.id, second.message.id) == ["sent", "sending"]
    assert _status(rt, *(b.message.id for b in rest)) == ["queued"] * len(rest)


def _everyone(rt: Runtime, caseload_file: Path, transport: ScriptedTwilio) -> list[Participant]:
    _setup(rt, caseload_file, transport)
    with transaction(rt.engine) as db:
        return list(db.exec(select(Participant).order_by(col(Participant.id))).all())


def _transactions_of(rt: Runtime, run: Callable[[], object]) -> int:
    begun: list[object] = []

    def on_begin(connection: object) -> None:
        begun.append(connection)

    sa.event.listen(rt.engine, "begin", on_begin)
    try:
        run()
    finally:
        sa.event.remove(rt.engine, "begin", on_begin)
    return len(begun)


def test_a_pass_claims_due_texts_together_and_records_them_together(rt: Runtime, caseload_file: Path) -> None:
    twilio = ScriptedTwilio()
    people = _everyone(rt, caseload_file, twilio)
    ids = [_queue(rt, person) for person in people]
    now = rt.clock.now()
    reports: list[SendReport] = []
    # One transaction claims all three; the next records them (and finds nothing more due).
    assert _transactions_of(rt, lambda: reports.append(send_due(rt, now))) == 2
    assert reports[0].sent == len(people) and _status(rt, *ids) == ["sent"] * len(ids)
    assert sorted(to for to, _ in twilio.sent) == sorted(p.phone for p in people)


def test_a_pass_with_nothing_to_send_begins_no_transaction(rt: Runtime, caseload_file: Path) -> None:
    """The clock's sending pass finds nothing on most ticks: it looks without a unit of work (on
    SQLite, without taking the write lock), and begins one only when there is something to claim."""
    twilio = ScriptedTwilio()
    people = _everyone(rt, caseload_file, twilio)
    now = rt.clock.now()
    reports: list[SendReport] = []
    assert _transactions_of(rt, lambda: reports.append(send_due(rt, now))) == 0
    later = _queue(rt, people[0])
    with transaction(rt.engine) as db:  # a retry waiting out its backoff is not due yet
        db.execute(
            sa.update(Message).where(col(Message.id) == later).values(next_attempt_at=now + timedelta(minutes=5))
        )
    assert _transactions_of(rt, lambda: reports.append(send_due(rt, now))) == 0
    assert _transactions_of(rt, lambda: reports.append(send_due(rt, now + timedelta(minutes=5)))) == 2
    assert [r.sent for r in reports] == [0, 0, 1] and _status(rt, later) == ["sent"]
    assert twilio.sent and twilio.sent[-1][0] == people[0].phone


def test_texts_a_pass_claimed_and_never_handed_over_go_back_in_the_queue(rt: Runtime, caseload_file: Path) -> None:
    class DropsTheSecond(ScriptedTwilio):
        def send(self, *, to: str, body: str, key: str, status_callback: str | None) -> SendResult:
            if len(self.sent) == 1:
                super().send(to=to, body=body, key=key, status_callback=status_callback)
                raise ConnectionError("provider connection dropped after accepting it")
            return super().send(to=to, body=body, key=key, status_callback=status_callback)

    twilio = DropsTheSecond()
    first, second, third = (_queue(rt, person) for person in _everyone(rt, caseload_file, twilio))
    now = rt.clock.now()
    with pytest.raises(ConnectionError):
        send_due(rt, now)
    assert _status(rt, first, second, third) == ["sent", "sending", "queued"]
    [left] = [m for m in outbound(rt) if m.id == third]
    assert (left.attempts, left.claimed_at) == (0, None)
    reconcile_stale(rt, now + STALE_CLAIM * 2)
    assert send_due(rt, now + STALE_CLAIM * 2).sent == 1
    assert _status(rt, first, second, third) == ["sent"] * 3 and len(twilio.sent) == 3  # none went twice


def test_a_pass_claims_no_further_ahead_than_the_pace_lets_texts_go(
    rt: Runtime, caseload_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At one segment every 2 s, a transaction claims the text that goes now and at most the one
    after it: a sender that dies while it waits leaves those, not the whole queue, for reconciling."""
    moment = [1_000_000.0]
    slow = Pacer(0.5, clock=lambda: moment[0], sleep=lambda seconds: moment.__setitem__(0, moment[0] + seconds))
    monkeypatch.setattr(sender, "pacer_for", lambda _rt: slow)
    claimed_when_sent: list[int] = []

    class CountsClaims(ScriptedTwilio):
        def send(self, *, to: str, body: str, key: str, status_callback: str | None) -> SendResult:
            claimed_when_sent.append(sum(m.status == "sending" for m in outbound(rt)))
            return super().send(to=to, body=body, key=key, status_callback=status_callback)

    ids = [_queue(rt, person) for person in _everyone(rt, caseload_file, CountsClaims())]
    assert send_due(rt, rt.clock.now()).sent == len(ids) == 3
    # The first two were claimed together (the second's slot, 2 s ahead, ended the claim); the third
    # in the transaction that kept their results. At the tests' own pace all three go together.
    assert claimed_when_sent == [2, 2, 1], claimed_when_sent
    assert _status(rt, *ids) == ["sent"] * len(ids) and moment[0] >= 1_000_000.0 + 2 * (len(ids) - 1)
