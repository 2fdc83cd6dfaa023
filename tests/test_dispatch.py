"""Replies leave straight after the inbound transaction commits, without waiting for a tick."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

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
