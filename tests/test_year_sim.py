"""The year simulation (benchmarks/year.py) at a tiny size, checked against what its seeded plan implies."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

from assistant.engine.flow import parse_duration
from assistant.timing import next_weekly, parse_hhmm

ROOT = Path(__file__).resolve().parent.parent


def _load_year() -> ModuleType:
    spec = importlib.util.spec_from_file_location("year_benchmark", ROOT / "benchmarks" / "year.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


year = _load_year()


def _checkin_wait() -> timedelta:
    flow = tomllib.loads((ROOT / "flows" / "checkin.toml").read_text(encoding="utf-8"))
    return parse_duration(flow["nodes"]["ask_week"]["ask"]["wait"])


def test_plan_is_the_same_for_the_same_seed() -> None:
    config = year.Config(participants=200, specialists=8, weeks=20, seed=3)
    first, again = year.plan(config), year.plan(config)

    def shape(p: object) -> tuple[object, ...]:
        return (p.group, p.pattern, p.miss, p.away, p.checkin_day, p.checkin_time, p.drift_week, p.appointments)  # type: ignore[attr-defined]

    assert [shape(p) for p in first] == [shape(p) for p in again]
    assert {p.group for p in first} == {name for name, _ in year.GROUP_SHARES}
    drifters = [p for p in first if p.group == "drifter"]
    assert drifters and all(1 <= p.drift_week <= 15 for p in drifters)
    assert {p.pattern for p in drifters} <= set(year.DRIFTER_PATTERNS)
    assert all(p.pattern == p.group for p in first if p.group != "drifter")
    # Weeks away come back: a holiday or a bad fortnight lasts one or two weeks, inside the run.
    for p in first:
        assert all(0 <= a <= b < a + 2 and a < config.weeks for a, b in p.away), p
    assert all(len(p.away) == 1 for p in first if p.group == "bad_fortnight")
    assert all(not p.away for p in first if p.group in ("steady", "slow", "shift", "in_work"))


# Seven weeks from Monday 4 January 2027: no bank holiday, no clock change; steady-like people miss nothing.
TINY = {"participants": 30, "specialists": 3, "weeks": 7, "seed": 4, "miss_rate": 0.0}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> object:
    return year.simulate(year.Config(**TINY), tmp_path_factory.mktemp("year"))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny_fixed(tmp_path_factory: pytest.TempPathFactory) -> object:
    config = year.Config(**TINY, fixed_rule=True)  # type: ignore[arg-type]
    return year.simulate(config, tmp_path_factory.mktemp("year-fixed"))


def _first_unanswered(result: object, person: object) -> datetime:
    config = result.config  # type: ignore[attr-defined]
    first = next_weekly(person.checkin_day, parse_hhmm(person.checkin_time), "Europe/London", config.start)  # type: ignore[attr-defined]
    return first + timedelta(weeks=person.drift_week)  # type: ignore[attr-defined]


def _steady_drifters(result: object) -> list[object]:
    # Drifters who answered every check-in until they stopped (a steady pattern misses nothing here).
    found = [p for p in result.people if p.group == "drifter" and p.pattern == "steady"]  # type: ignore[attr-defined]
    assert len(found) >= 2 and all(p.miss == 0 and not p.away for p in found)
    return found


def test_with_the_fixed_rule_a_drifter_is_flagged_when_their_second_unanswered_checkin_times_out(
    tiny_fixed: object,
) -> None:
    result = tiny_fixed
    wait = _checkin_wait()
    assert not result.drifters_unflagged  # type: ignore[attr-defined]
    assert not result.followups  # type: ignore[attr-defined]  # the rhythm is off: no follow-up texts
    for person in _steady_drifters(result):
        second_unanswered = _first_unanswered(result, person) + timedelta(weeks=1)
        assert result.drifter_flagged_at[person.external_id] == second_unanswered + wait, person  # type: ignore[attr-defined]
        # Their last text came a little after the last check-in they answered.
        lag = result.drifter_lags[person.external_id] * 86400  # type: ignore[attr-defined]
        assert 14 * 86400 + wait.total_seconds() - 10 * 3600 <= lag <= 14 * 86400 + wait.total_seconds()


def test_by_their_rhythm_a_steady_drifter_gets_one_follow_up_then_is_flagged_before_the_next_checkin(
    tiny: object,
) -> None:
    result = tiny
    assert not result.drifters_unflagged  # type: ignore[attr-defined]
    for person in _steady_drifters(result):
        unanswered = _first_unanswered(result, person)
        flagged = result.drifter_flagged_at[person.external_id]  # type: ignore[attr-defined]
        followups = result.followups.get(person.external_id, [])  # type: ignore[attr-defined]
        # One gentle text, no sooner than a day after the check-in they left unanswered...
        assert len(followups) == 1, person
        assert unanswered + timedelta(hours=24) <= followups[0] < flagged
        # ...and their specialist told a day or more after it, before the next check-in was due:
        # earlier than the fixed count of two unanswered check-ins could.
        assert followups[0] + timedelta(hours=24) <= flagged < unanswered + timedelta(weeks=1), person
        assert result.drifter_lags[person.external_id] < 14  # type: ignore[attr-defined]


def test_people_who_always_answer_are_never_flagged_or_followed_up(tiny: object, tiny_fixed: object) -> None:
    for result in (tiny, tiny_fixed):
        always = [p for p in result.people if p.group == "steady"]  # type: ignore[attr-defined]
        assert always and all(p.miss == 0 for p in always)
        assert result.flags_by_group.get("steady", {}).get("not_responding", 0) == 0  # type: ignore[attr-defined]
        assert result.steady_flagged == []  # type: ignore[attr-defined]
        assert not {p.external_id for p in always} & set(result.followups)  # type: ignore[attr-defined]
        assert result.false_flags_per_specialist_week == 0  # type: ignore[attr-defined]


def test_false_flags_count_every_group_that_is_not_drifting(tiny: object) -> None:
    result = tiny
    counted = sum(
        kinds.get("not_responding", 0)
        for group, kinds in result.flags_by_group.items()  # type: ignore[attr-defined]
        if group != "drifter"
    )
    assert result.false_flags() == counted  # type: ignore[attr-defined]
    assert result.false_flags_all_per_specialist_week == counted / 3 / 7  # type: ignore[attr-defined]


def test_the_report_prints_every_figure(tiny: object, capsys: pytest.CaptureFixture[str]) -> None:
    year.report(tiny, aims_apply=False)
    out = capsys.readouterr().out
    for figure in (
        "median",
        "by what they were like before they stopped",
        "every group that is not drifting",
        "steady repliers",
        "gentle follow-ups sent",
        "peak memory",
        "verdict",
    ):
        assert figure in out, figure
    assert "every drifter flagged" in out
