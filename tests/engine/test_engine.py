"""The engine on its own: definitions checked at load, start/resume as pure functions."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from assistant.config import ROOT
from assistant.content.library import Catalog, FlowLibrary
from assistant.engine import (
    Ended,
    FlowError,
    Interrupt,
    RaiseFlag,
    RecordAnswer,
    Reply,
    Say,
    Timeout,
    Wait,
    keyword,
    load_flow,
    resume,
    says_only,
    start,
)

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
CHECKIN = tomllib.loads((ROOT / "flows" / "checkin.toml").read_text())


def _flow(**changes: Any) -> Any:
    data = json.loads(json.dumps(CHECKIN)) | changes
    return load_flow(data, source="test.toml")


def test_all_shipped_flows_load_with_their_messages() -> None:
    library = FlowLibrary(ROOT / "flows", Catalog(ROOT / "messages"))
    assert "checkin" in library.current


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(start="nowhere"), "start node 'nowhere' does not exist"),
        (
            lambda d: d["nodes"]["thanks_good"].update(next="missing"),
            "node 'thanks_good' routes to missing node 'missing'",
        ),
        (lambda d: d["nodes"].update(orphan={"say": "thanks_ok"}), "['orphan'] can never be reached"),
        (lambda d: d["nodes"]["ask_week"]["ask"].update(wait="forever"), "node 'ask_week': not a duration"),
        (lambda d: d["nodes"]["thanks_ok"].update(colour="red"), "node 'thanks_ok': unknown field"),
        (lambda d: d.pop("version"), "missing 'version'"),
    ],
)
def test_bad_definitions_fail_naming_file_and_node(mutate: Any, message: str) -> None:
    data = json.loads(json.dumps(CHECKIN))
    mutate(data)
    with pytest.raises(FlowError) as caught:
        load_flow(data, source="flows/broken.toml")
    assert "flows/broken.toml" in str(caught.value) and message in str(caught.value)


def test_missing_message_key_is_caught() -> None:
    with pytest.raises(FlowError, match="node 'ask_week' says 'ask_week', which has no message"):
        load_flow(CHECKIN, source="x.toml", message_keys={"thanks_good"})


def test_start_says_and_waits() -> None:
    flow = _flow()
    state, events = start(flow, {"first_name": "Alex"}, NOW)
    assert events == [Say("ask_week", {"first_name": "Alex"}), Wait("week", NOW + timedelta(hours=24))]
    assert state["status"] == "waiting" and state["question"] == "week"
    assert json.loads(json.dumps(state)) == state


def test_resume_routes_and_ends() -> None:
    flow = _flow()
    state, _ = start(flow, {}, NOW)
    state, events = resume(flow, state, Reply("Not great tbh"), NOW)
    # "not great tbh": a phrase followed by more words
    assert events[0] == RecordAnswer("week", "not_great", "Not great tbh")
    assert events[1] == Say("offer_call", {})
    state, events = resume(flow, state, Reply("yes"), NOW)
    assert RaiseFlag("callback", "action", "Asked for a call after a hard week") in events
    assert isinstance(events[-1], Ended) and state["status"] == "ended"


def test_timeout_and_interrupt() -> None:
    flow = _flow()
    state, _ = start(flow, {}, NOW)
    _, events = resume(flow, state, Timeout(), NOW + timedelta(hours=24))
    assert events == [RecordAnswer("week", "no_reply", None), Ended("no_reply")]
    _, events = resume(flow, state, Interrupt("call", "CALL"), NOW)
    assert events == [RecordAnswer("week", "call", "CALL"), Ended("call")]


def test_resume_refuses_a_finished_or_foreign_state() -> None:
    flow = _flow()
    state, _ = start(flow, {}, NOW)
    ended, _ = resume(flow, state, Reply("1"), NOW)
    with pytest.raises(ValueError):
        resume(flow, ended, Reply("1"), NOW)
    with pytest.raises(ValueError):
        resume(_flow(version=2), state, Reply("1"), NOW)


@pytest.mark.parametrize(("text", "value"), [("2 x", "ok"), ("3 thanks", "not_great"), ("1 xx", "good")])
def test_a_number_with_thanks_or_kisses_is_the_number(text: str, value: str) -> None:
    flow = _flow()
    state, _ = start(flow, {}, NOW)
    _, events = resume(flow, state, Reply(text), NOW)
    assert events[0] == RecordAnswer("week", value, text)
    _, events = resume(flow, state, Reply("2 days were ok"), NOW)  # more words than a number: free text
    assert events[0] != RecordAnswer("week", "ok", "2 days were ok")


def test_longest_phrase_wins() -> None:
    flow = _flow()
    state, _ = start(flow, {}, NOW)
    _, events = resume(flow, state, Reply("not bad at all"), NOW)
    assert events[0] == RecordAnswer("week", "good", "not bad at all")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", "opt_out"),
        (" stop. ", "opt_out"),
        ("Unsubscribe", "opt_out"),
        ("stopall", "opt_out"),
        ("cancel", "opt_out"),
        ("START", "opt_in"),
        ("unstop", "opt_in"),
        ("yes", "opt_in"),
        ("HELP", "help"),
        ("call me", None),  # the service's own keywords (CALL) are phrase knowledge: tests/understanding
        ("stop texting me", None),
        ("please don't stop", None),
        ("good", None),
    ],
)
def test_keywords(text: str, expected: str | None) -> None:
    assert keyword(text) == expected


def test_flow_files_are_toml(tmp_path: Path) -> None:
    broken = tmp_path / "flows"
    broken.mkdir()
    (broken / "bad.toml").write_text("id = ")
    with pytest.raises(FlowError, match=r"bad\.toml"):
        FlowLibrary(broken, Catalog(ROOT / "messages"))


def test_a_one_word_reply_may_carry_thanks_and_kisses() -> None:
    assert says_only("YES please x", "yes") and says_only("Yes, thank you!", "yes") and says_only("yes xx", "yes")
    assert (
        not says_only("yes but not tuesday", "yes") and not says_only("no thanks", "yes") and not says_only("", "yes")
    )
