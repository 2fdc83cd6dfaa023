"""Scoring and outcome definitions, exactly as the Talking Therapies manual defines them."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assistant.config import ROOT
from assistant.content.library import Catalog, FlowLibrary
from assistant.engine import FlowError, load_instrument, score, trajectory

LIBRARY = FlowLibrary(ROOT / "flows", Catalog(ROOT / "messages"))
PHQ9, GAD7, WSAS = (LIBRARY.instruments[i] for i in ("phq9", "gad7", "wsas"))


def test_instruments_keep_their_validated_shape() -> None:
    assert (len(PHQ9.items), PHQ9.max_total, PHQ9.risk_items) == (9, 27, (9,))
    assert (len(GAD7.items), GAD7.max_total) == (7, 21)
    assert (len(WSAS.items), WSAS.max_total, WSAS.not_applicable_items) == (5, 40, (1,))
    assert PHQ9.items[8] == "Thoughts that you would be better off dead or of hurting yourself in some way"
    assert "Spitzer" in PHQ9.attribution and "Kroenke" in GAD7.attribution


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (10, "moderate"),
        (15, "moderately severe"),
        (20, "severe"),
        (27, "severe"),
    ],
)
def test_phq9_bands(total: int, band: str) -> None:
    answers = {}
    remaining = total
    for n in range(1, 10):
        answers[n] = str(min(3, remaining))
        remaining -= min(3, remaining)
    result = score(PHQ9, answers)
    assert (result.complete, result.total, result.band) == (True, total, band)


def test_gad7_bands_and_partial() -> None:
    assert score(GAD7, {n: "3" for n in range(1, 8)}).band == "severe"
    assert score(GAD7, {n: "1" for n in range(1, 8)}).band == "mild"
    partial = score(GAD7, {n: "1" for n in range(1, 7)})
    assert (partial.complete, partial.total, partial.band) == (False, None, None)


def test_wsas_not_applicable_is_not_zero() -> None:
    with_na = score(WSAS, {1: "not_applicable", 2: "6", 3: "8", 4: "2", 5: "5"})
    # A 4-item total is kept but is partial: never banded on the 0-40 cut-offs.
    assert (with_na.complete, with_na.total, with_na.band, with_na.not_applicable) == (False, 21, None, (1,))
    full = score(WSAS, {1: "0", 2: "6", 3: "8", 4: "2", 5: "5"})
    assert (full.complete, full.total, full.band) == (True, 21, "moderately severe or worse")
    # not applicable anywhere but the work item is not allowed
    assert not score(WSAS, {1: "3", 2: "not_applicable", 3: "8", 4: "2", 5: "5"}).complete


@pytest.mark.parametrize(
    ("first", "latest", "expected"),
    [
        # recovered and reliably improved: reliable recovery
        (
            {"phq9": 17, "gad7": 14},
            {"phq9": 8, "gad7": 6},
            dict(recovery=True, reliable_improvement=True, reliable_recovery=True, reliable_deterioration=False),
        ),
        # below both thresholds but only PHQ down 5 and GAD down 3: recovery without reliable improvement
        (
            {"phq9": 12, "gad7": 9},
            {"phq9": 7, "gad7": 6},
            dict(recovery=True, reliable_improvement=False, reliable_recovery=False),
        ),
        # PHQ down 6 but GAD up 4: not an improvement, and a deterioration
        (
            {"phq9": 18, "gad7": 8},
            {"phq9": 12, "gad7": 12},
            dict(recovery=False, reliable_improvement=False, reliable_deterioration=True),
        ),
        # not at caseness at first: no recovery possible
        (
            {"phq9": 8, "gad7": 6},
            {"phq9": 2, "gad7": 1},
            dict(caseness_first=False, recovery=False, reliable_improvement=True),
        ),
        # PHQ up exactly 6: reliable deterioration
        ({"phq9": 5, "gad7": 5}, {"phq9": 11, "gad7": 5}, dict(reliable_deterioration=True, caseness_latest=True)),
        # thresholds are inclusive: PHQ 10 / GAD 8 are caseness
        (
            {"phq9": 10, "gad7": 3},
            {"phq9": 9, "gad7": 7},
            dict(caseness_first=True, caseness_latest=False, recovery=True),
        ),
    ],
)
def test_trajectory(first: dict[str, int], latest: dict[str, int], expected: dict[str, bool]) -> None:
    result = trajectory(first, latest)
    assert result is not None
    for key, value in expected.items():
        assert getattr(result, key) is value, key


def test_trajectory_needs_scores_at_both_times() -> None:
    assert trajectory({"phq9": 12}, {"gad7": 5}) is None
    only_phq = trajectory({"phq9": 16}, {"phq9": 9})
    assert only_phq is not None and only_phq.recovery and only_phq.reliable_improvement


def test_bad_instrument_definitions_fail_loudly() -> None:
    data = tomllib.loads((ROOT / "flows" / "instruments" / "gad7.toml").read_text())
    with pytest.raises(FlowError, match=r"item 9 does not exist"):
        load_instrument(data | {"risk_items": [9]}, "gad7.toml")
    with pytest.raises(FlowError, match="bands must rise"):
        load_instrument(data | {"bands": [{"upto": 10, "label": "a"}, {"upto": 5, "label": "b"}]}, "gad7.toml")
    with pytest.raises(FlowError, match="letters and digits"):
        load_instrument(data | {"id": "gad_7"}, "gad7.toml")


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "moderately severe"),
        (19, "moderately severe"),
        (20, "severe"),
    ],
)
def test_phq9_band_edges(total: int, band: str) -> None:
    values = [min(3, max(0, total - 3 * i)) for i in range(9)]
    assert score(PHQ9, {n + 1: str(v) for n, v in enumerate(values)}).band == band


@pytest.mark.parametrize(
    ("total", "band"),
    [(4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"), (14, "moderate"), (15, "severe"), (21, "severe")],
)
def test_gad7_band_edges(total: int, band: str) -> None:
    values = [min(3, max(0, total - 3 * i)) for i in range(7)]
    assert score(GAD7, {n + 1: str(v) for n, v in enumerate(values)}).band == band


@given(st.lists(st.integers(min_value=0, max_value=3), min_size=9, max_size=9))
def test_phq9_total_is_the_sum_of_items(values: list[int]) -> None:
    result = score(PHQ9, {n + 1: str(v) for n, v in enumerate(values)})
    assert result.complete and result.total == sum(values)


@given(st.lists(st.integers(min_value=0, max_value=3), min_size=7, max_size=7), st.integers(min_value=0, max_value=6))
def test_bands_are_monotonic(values: list[int], bump: int) -> None:
    order = [label for _, label in GAD7.bands]
    lower = score(GAD7, {n + 1: str(v) for n, v in enumerate(values)})
    raised = list(values)
    raised[bump] = 3
    higher = score(GAD7, {n + 1: str(v) for n, v in enumerate(raised)})
    assert order.index(higher.band or "") >= order.index(lower.band or "")


@pytest.mark.parametrize("answer", ["0", "1", "2", "3"])
def test_item9_at_every_value(answer: str) -> None:
    from datetime import UTC, datetime

    from assistant.engine import RaiseFlag, Reply, Say, resume, start

    flow = LIBRARY.questionnaire(["phq9", "gad7"])
    now = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    state, _ = start(flow, {"expires_at": "2026-11-30T11:00:00+00:00"}, now)
    state, _ = resume(flow, state, Reply("yes"), now)
    for _ in range(8):
        state, _ = resume(flow, state, Reply("0"), now)
    state, events = resume(flow, state, Reply(answer), now)
    crisis = any(isinstance(e, Say) and e.key == "common/crisis" for e in events)
    flagged = any(isinstance(e, RaiseFlag) and e.severity == "urgent" for e in events)
    assert crisis is flagged is (answer != "0")
    if answer == "0":
        assert state["question"] == "gad7_1"  # the questions go on
    else:  # paused: no next item
        assert (state["status"], state["end_reason"]) == ("ended", "paused_for_safety")
