"""The risk item (PHQ-9 item 9) in the generated questionnaire: recall first, pause after signposting,
SKIP asks a person, and a paused sitting can be taken up again at its first unanswered item."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from assistant.config import ROOT
from assistant.content.library import Catalog, FlowLibrary
from assistant.engine import (
    Ended,
    Event,
    Flow,
    FlowError,
    RaiseFlag,
    RecordAnswer,
    Reply,
    Say,
    State,
    Wait,
    load_flow,
    questionnaire_flow,
    resume,
    resume_entry,
    score,
    start,
)

LIBRARY = FlowLibrary(ROOT / "flows", Catalog(ROOT / "messages"))
PHQ9 = LIBRARY.instruments["phq9"]
NOW = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
CONTEXT = {"expires_at": "2026-11-30T11:00:00+00:00"}


def _at_item9(flow: Flow) -> State:
    state, _ = start(flow, dict(CONTEXT), NOW)
    state, _ = resume(flow, state, Reply("yes"), NOW)
    for _ in range(8):
        state, _ = resume(flow, state, Reply("0"), NOW)
    assert state["question"] == "phq9_9"
    return state


def _keys(events: list[Event]) -> list[str]:
    return [e.key for e in events if isinstance(e, Say)]


def _flags(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.kind, e.severity) for e in events if isinstance(e, RaiseFlag)]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", "1"),
        ("2", "2"),
        ("3", "3"),
        ("Several days", "1"),
        ("most days", "2"),
        ("nearly every day", "3"),
        ("sometimes but not lately", "unclear"),
        ("yes", "unclear"),
        ("Yes.", "unclear"),
        ("a bit", "unclear"),
        ("occasionally", "unclear"),
        ("most of the time", "unclear"),
        ("sort of", "unclear"),
        ("not really", "unclear"),
        ("no idea", "unclear"),
        ("no but sometimes", "unclear"),
        ("never mind", "unclear"),
        ("dunno", "unclear"),
        ("idk", "unclear"),
        ("why do you ask", "unclear"),
        ("\U0001f937", "unclear"),
        ("", "unclear"),
        ("0 sometimes", "unclear"),
        ("4", "unclear"),
    ],
)
def test_anything_but_a_clear_not_at_all_signposts_flags_and_pauses(text: str, value: str) -> None:
    flow = LIBRARY.questionnaire(["phq9", "gad7"])
    state, events = resume(flow, _at_item9(flow), Reply(text), NOW)
    assert events[0] == RecordAnswer("phq9_9", value, text)
    # At once, with no re-prompt first, and no next item after it.
    assert _keys(events) == ["common/crisis", "questionnaire/paused"]
    assert _flags(events) == [("crisis", "urgent")]
    assert events[-1] == Ended("paused_for_safety")
    assert (state["status"], state["end_reason"]) == ("ended", "paused_for_safety")
    assert json.loads(json.dumps(state)) == state


def test_the_flag_says_whether_the_answer_was_a_value_or_unclear() -> None:
    flow = LIBRARY.questionnaire(["phq9", "gad7"])
    _, valued = resume(flow, _at_item9(flow), Reply("2"), NOW)
    _, unclear = resume(flow, _at_item9(flow), Reply("a bit"), NOW)
    (valued_flag,) = [e for e in valued if isinstance(e, RaiseFlag)]
    (unclear_flag,) = [e for e in unclear if isinstance(e, RaiseFlag)]
    assert "more than 'not at all'" in valued_flag.reason
    assert "other than a clear 'not at all'" in unclear_flag.reason


@pytest.mark.parametrize(
    "text", ["0", "not at all", "Not at all.", "NO", "no!", "never", "none", "nope", "nah", "zero", "0 - Not at all"]
)
def test_a_clear_not_at_all_goes_on_to_the_next_item(text: str) -> None:
    flow = LIBRARY.questionnaire(["phq9", "gad7"])
    state, events = resume(flow, _at_item9(flow), Reply(text), NOW)
    assert events[0] == RecordAnswer("phq9_9", "0", text)
    assert _keys(events) == ["questionnaire/item"] and not _flags(events)
    assert isinstance(events[-1], Wait) and state["question"] == "gad7_1"


@pytest.mark.parametrize("text", ["skip", "SKIP", "pass", "next", "skip this one"])
def test_skip_on_the_risk_item_asks_a_person_and_goes_on(text: str) -> None:
    flow = LIBRARY.questionnaire(["phq9", "gad7"])
    state, events = resume(flow, _at_item9(flow), Reply(text), NOW)
    assert events[0] == RecordAnswer("phq9_9", "skipped", text)
    assert [e for e in events if isinstance(e, RaiseFlag)] == [
        RaiseFlag(
            "risk_item_skipped",
            "action",
            "Skipped the question about thoughts of self-harm: please ask them how they are",
        )
    ]
    assert _keys(events) == ["questionnaire/item"] and state["question"] == "gad7_1"


def test_other_items_still_re_prompt_once() -> None:
    flow = LIBRARY.questionnaire(["phq9", "gad7"])
    state, _ = start(flow, dict(CONTEXT), NOW)
    state, _ = resume(flow, state, Reply("yes"), NOW)
    state, events = resume(flow, state, Reply("a bit"), NOW)
    assert _keys(events) == ["questionnaire/reprompt"] and state["question"] == "phq9_1"
    state, events = resume(flow, state, Reply("not really"), NOW)  # "not really" is 0 off the risk item
    assert events[0] == RecordAnswer("phq9_1", "0", "not really") and state["question"] == "phq9_2"


def test_a_risk_item_last_in_the_flow_thanks_instead_of_pausing() -> None:
    flow = LIBRARY.questionnaire(["gad7", "phq9"])
    state, _ = start(flow, dict(CONTEXT), NOW)
    state, _ = resume(flow, state, Reply("yes"), NOW)
    for _ in range(15):
        state, _ = resume(flow, state, Reply("0"), NOW)
    assert state["question"] == "phq9_9"
    state, events = resume(flow, state, Reply("yes"), NOW)
    assert _keys(events) == ["common/crisis", "questionnaire/thanks"]
    assert _flags(events) == [("crisis", "urgent")] and events[-1] == Ended("completed")
    assert flow.entries == ("page_gad7_1",) and "paused" not in flow.nodes


def test_a_paused_sitting_is_taken_up_at_its_first_unanswered_item() -> None:
    flow = LIBRARY.questionnaire(["phq9", "gad7"])
    assert flow.entries == ("resume_gad7_1", "page_phq9_1", "page_gad7_1")
    answered = {"start", *(f"phq9_{n}" for n in range(1, 10))}
    assert resume_entry(flow, answered) == "resume_gad7_1"
    assert resume_entry(flow, {"start"}) is None  # nothing to take up before the risk item
    assert resume_entry(flow, answered | {f"gad7_{n}" for n in range(1, 8)}) is None

    state, events = start(flow, dict(CONTEXT), NOW, at="resume_gad7_1")
    assert events[0] == Say("questionnaire/intro", CONTEXT | {"count": 7, "resuming": True, "offer_link": True})
    assert state["question"] == "start"
    state, events = resume(flow, state, Reply("yes"), NOW)
    (item,) = [e for e in events if isinstance(e, Say)]
    assert (item.vars["number"], item.vars["item"]) == (10, "Feeling nervous, anxious or on edge")
    assert state["question"] == "gad7_1"


def test_a_run_starts_only_at_the_start_or_a_declared_entry() -> None:
    flow = LIBRARY.questionnaire(["phq9", "gad7"])
    with pytest.raises(ValueError, match="'gad7_3' is not a node this flow can start at"):
        start(flow, dict(CONTEXT), NOW, at="gad7_3")
    with pytest.raises(ValueError, match="'page_gad7_3' is not a node this flow can start at"):
        start(flow, dict(CONTEXT), NOW, at="page_gad7_3")


def test_an_unclear_answer_is_never_scored() -> None:
    answers: dict[int, str | None] = {n: "0" for n in range(1, 9)}
    assert score(PHQ9, answers | {9: "1"}).total == 1
    unclear = score(PHQ9, answers | {9: "unclear"})
    assert (unclear.complete, unclear.total, unclear.items[9]) == (False, None, "unclear")


def test_a_risk_item_needs_a_scale_that_says_what_not_at_all_is() -> None:
    scales: dict[str, Any] = {k: dict(v) for k, v in LIBRARY.scales.items()}
    del scales["frequency"]["risk_zero"]
    with pytest.raises(FlowError, match="phq9 item 9 is a risk item, so scale 'frequency' needs a risk_zero list"):
        questionnaire_flow([PHQ9], scales, source="flows/instruments")


def _tiny(**changes: Any) -> dict[str, Any]:
    return {
        "id": "tiny",
        "version": 1,
        "start": "a",
        "nodes": {"a": {"say": "x"}, "b": {"say": "y"}},
    } | changes


def test_entries_are_checked_at_load() -> None:
    with pytest.raises(FlowError, match=r"\['b'\] can never be reached"):
        load_flow(_tiny(), source="tiny.toml")
    assert load_flow(_tiny(entries=["b"]), source="tiny.toml").entries == ("b",)
    with pytest.raises(FlowError, match=r"tiny\.toml: entry node 'c' does not exist"):
        load_flow(_tiny(entries=["b", "c"]), source="tiny.toml")
