"""The path of one inbound reply through the code: which modules handle it, and that control only
goes down the layers (ARCHITECTURE.md, "One inbound reply").

What counts is the code that decides what happens to the text: from the webhook's view to the
provider call. The pure engine, the database layer, the content library and the base modules
(configuration, the clock, phones, signing, transports, logging) are the floor everything stands
on, and the app's request hooks and rate limit run for every request alike; those are not counted.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from assistant.jobs.tick import tick
from assistant.runtime import Runtime

from .conftest import Phone, outbound
from .test_rhythm import ALEX, import_one, on

PACKAGE = Path(__file__).resolve().parents[1] / "assistant"
FLOOR = ("engine/", "db/", "content/")
BASE = {"app.py", "limits.py", "config.py", "clock.py", "timing.py", "phones.py", "signing.py", "logs.py"}
BASE |= {"transports.py", "runtime.py", "windows.py", "__init__.py"}
MOST_FILES = 10


def counted(relative: str) -> bool:
    return not relative.startswith(FLOOR) and Path(relative).name not in BASE and relative not in BASE


class Trace:
    """The counted modules entered, in order, and each call from one of them into another."""

    def __init__(self) -> None:
        self.modules: list[str] = []
        self.calls: set[tuple[str, str]] = set()

    def module_of(self, frame: FrameType | None) -> str | None:
        """The nearest counted module on the stack from this frame outward."""
        while frame is not None:
            name = frame.f_code.co_filename
            if name.startswith(str(PACKAGE)):
                relative = str(Path(name).relative_to(PACKAGE))
                if counted(relative):
                    return relative
            frame = frame.f_back
        return None

    def profile(self, frame: FrameType, event: str, arg: object) -> None:
        if event != "call" or not frame.f_code.co_filename.startswith(str(PACKAGE)):
            return
        callee = self.module_of(frame)
        if callee is None or str(PACKAGE / callee) != frame.f_code.co_filename:
            return
        if callee not in self.modules:
            self.modules.append(callee)
        caller = self.module_of(frame.f_back)
        if caller is not None and caller != callee:
            self.calls.add((caller, callee))

    def run(self, action: Callable[[], Any]) -> None:
        sys.setprofile(self.profile)
        try:
            action()
        finally:
            sys.setprofile(None)

    def back_and_forth(self) -> list[tuple[str, str]]:
        """Calls that come back to a module already further up the same chain of calls."""
        below: dict[str, set[str]] = {}
        for caller, callee in self.calls:
            below.setdefault(caller, set()).add(callee)

        def reaches(start: str, goal: str, seen: set[str]) -> bool:
            for nxt in below.get(start, ()):
                if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                    return True
            return False

        return sorted((a, b) for a, b in self.calls if reaches(b, a, {b}))


@pytest.fixture
def waiting_checkin(rt: Runtime, tmp_path: Path) -> None:
    import_one(rt, tmp_path)
    rt.clock.set(on(2, "10:31"))  # type: ignore[attr-defined]
    tick(rt, on(2, "10:31"))
    assert [m.message_key for m in outbound(rt)] == ["checkin/ask_week"]
    rt.clock.set(on(2, "11:00"))  # type: ignore[attr-defined]


def test_an_answer_to_a_check_in_goes_through_at_most_ten_files_one_way(
    waiting_checkin: None, rt: Runtime, phone: Phone
) -> None:
    trace = Trace()
    trace.run(lambda: phone.text(ALEX, "2"))
    assert [m.message_key for m in outbound(rt)] == ["checkin/ask_week", "checkin/thanks_ok"]
    assert outbound(rt)[-1].status == "sent"
    assert trace.modules[0] == "webhooks.py" and trace.modules[-1] == "sending/sender.py"
    assert len(trace.modules) <= MOST_FILES, trace.modules
    assert trace.back_and_forth() == []


def test_free_text_and_a_crisis_text_take_the_same_way_down(waiting_checkin: None, rt: Runtime, phone: Phone) -> None:
    for body in ("can I bring my CV on Thursday", "I want to end it all tonight"):
        trace = Trace()
        trace.run(lambda body=body: phone.text(ALEX, body))  # type: ignore[misc]
        assert len(trace.modules) <= MOST_FILES + 1, (body, trace.modules)
        assert trace.back_and_forth() == [], body
    assert "common/crisis" in [m.message_key for m in outbound(rt)]
