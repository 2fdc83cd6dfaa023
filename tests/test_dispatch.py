"""Replies leave straight after the inbound transaction commits, without waiting for a tick."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from assistant.app import create_app
from assistant.imports.caseload import import_caseload
from assistant.runtime import Runtime

from .conftest import Phone, outbound


def test_reply_is_sent_by_the_post_commit_dispatcher(rt: Runtime, caseload_file: Path) -> None:
    rt.settings = replace(rt.settings, dispatch="thread")
    import_caseload(rt, caseload_file, rt.clock.now())
    app = create_app(runtime=rt)
    phone = Phone(app.test_client(), rt)
    assert phone.text("+447700900101", "help").status_code == 200
    deadline = time.monotonic() + 10  # a bound on waiting, not a speed assertion
    while time.monotonic() < deadline and outbound(rt)[0].status != "sent":
        time.sleep(0.02)
    assert outbound(rt)[0].status == "sent"


def test_with_dispatch_off_the_reply_waits_for_the_tick(rt: Runtime, caseload_file: Path) -> None:
    from assistant.jobs.tick import tick

    rt.settings = replace(rt.settings, dispatch="off")
    import_caseload(rt, caseload_file, rt.clock.now())
    phone = Phone(create_app(runtime=rt).test_client(), rt)
    phone.text("+447700900101", "help")
    assert outbound(rt)[0].status == "queued"
    tick(rt, rt.clock.now())
    assert outbound(rt)[0].status == "sent"


def test_texts_kicked_while_a_send_goes_are_taken_together_in_order(rt: Runtime) -> None:
    from assistant.sending.dispatch import BATCH_UP_TO, Dispatcher
    from assistant.sending.sender import Booked, Claimed

    rt.settings = replace(rt.settings, dispatch="thread")
    dispatcher = Dispatcher(rt)
    booked = Booked(Claimed(id=4, phone="+447700900101", body="Thanks", segments=1), start=0.0)
    for kicked in ([2, 3], [4], [5]):
        dispatcher._queue.put((kicked, kicked == [4], [booked] if kicked == [4] else []))
    assert dispatcher._with_waiting([1], False, []) == ([1, 2, 3, 4, 5], True, [booked])
    assert dispatcher._with_waiting([6], False, []) == ([6], False, []), "a pass took texts nobody kicked"
    for n in range(BATCH_UP_TO + 5):
        dispatcher._queue.put(([100 + n], False, []))
    ids, _, _ = dispatcher._with_waiting([], False, [])
    assert len(ids) == BATCH_UP_TO and ids == sorted(ids), "a pass took more than its batch, or out of order"
    assert dispatcher._queue.qsize() == 5, "what a pass left was lost"


def test_a_pass_that_fails_is_tried_once_more_and_email_waits_on_no_text(
    rt: Runtime, caseload_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assistant.sending import dispatch

    rt.settings = replace(rt.settings, dispatch="off")  # the reply waits in the outbox for this test to send
    import_caseload(rt, caseload_file, rt.clock.now())
    Phone(create_app(runtime=rt).test_client(), rt).text("+447700900101", "help")
    queued = [m.id for m in outbound(rt) if m.status == "queued"]
    assert queued, "the text was not answered"
    real_send_due, passes, emailed = dispatch.outbox.send_due, [], []

    def fails_first(*args: Any, **kwargs: Any) -> Any:
        passes.append(kwargs.get("only"))
        if len(passes) == 1:
            raise sa.exc.OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))
        return real_send_due(*args, **kwargs)

    monkeypatch.setattr(dispatch.outbox, "send_due", fails_first)
    monkeypatch.setattr(dispatch, "send_notifications", lambda rt, now: emailed.append(now))
    dispatch.Dispatcher(rt)._send(queued, False)
    assert len(passes) == 2 and {m.status for m in outbound(rt)} == {"sent"}, "the failed pass was not tried again"

    def always_fails(*args: Any, **kwargs: Any) -> Any:
        raise sa.exc.OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))

    monkeypatch.setattr(dispatch.outbox, "send_due", always_fails)
    emailed.clear()
    dispatch.Dispatcher(rt)._send([999], True)  # nothing raised out of the sending thread
    assert emailed, "email waited on texts that could not be sent"


def test_the_webhook_claims_its_replies_in_its_own_unit(rt: Runtime, caseload_file: Path) -> None:
    from assistant.sending.dispatch import Dispatcher

    import_caseload(rt, caseload_file, rt.clock.now())
    app = create_app(runtime=rt)
    kicked: list[tuple[list[int], list[Any]]] = []
    real = Dispatcher.kick

    def watch(self: Dispatcher, ids: list[int], **kwargs: Any) -> None:
        kicked.append((list(ids), list(kwargs.get("booked") or [])))
        real(self, ids, **kwargs)

    app.extensions["assistant.sending.dispatch"].kick = watch.__get__(app.extensions["assistant.sending.dispatch"])
    Phone(app.test_client(), rt).text("+447700900101", "help")
    [(ids, booked)] = kicked
    assert ids and [b.message.id for b in booked] == ids, "the reply was not claimed as the text's unit committed"
    assert [m.status for m in outbound(rt)] == ["sent"]


def test_with_dispatch_off_texts_a_unit_claimed_go_back_in_the_queue(rt: Runtime, caseload_file: Path) -> None:
    from assistant.conversation.inbound import receive_sms
    from assistant.jobs.tick import tick
    from assistant.sending.dispatch import Dispatcher

    import_caseload(rt, caseload_file, rt.clock.now())
    received = receive_sms(rt, sid="SM" + "7" * 32, sender="+447700900101", body="help", now=rt.clock.now(), claim=True)
    assert [m.status for m in outbound(rt)] == ["sending"]
    rt.settings = replace(rt.settings, dispatch="off")
    Dispatcher(rt).kick(received.outbox, booked=received.booked)
    assert [(m.status, m.attempts, m.claimed_at) for m in outbound(rt)] == [("queued", 0, None)]
    tick(rt, rt.clock.now())
    assert [m.status for m in outbound(rt)] == ["sent"]
