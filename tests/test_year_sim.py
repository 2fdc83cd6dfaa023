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
    assert [(p.group, p.checkin_day, p.checkin_time, p.drift_week, p.appointments) for p in first] == [
        (p.group, p.checkin_day, p.checkin_time, p.drift_week, p.appointments) for p in again
    ]
    groups = {p.group for p in first}
    assert groups == {"steady", "drifter", "dna_prone", "in_work"}
    drifts = [p.drift_week for p in first if p.group == "drifter"]
    assert drifts and all(1 <= w <= 15 for w in drifts)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> object:
    # Seven weeks from Monday 4 January 2027: no bank holiday, no clock change, no misses.
    config = year.Config(participants=20, specialists=3, weeks=7, seed=7, miss_rate=0.0)
    return year.simulate(config, tmp_path_factory.mktemp("year"))


def test_every_drifter_is_flagged_when_their_second_unanswered_checkin_times_out(tiny: object) -> None:
    result = tiny
    wait = _checkin_wait()
    drifters = [p for p in result.people if p.group == "drifter"]
    assert drifters and not result.drifters_unflagged
    for person in drifters:
        # Check-ins 0 .. drift_week-1 were answered; drift_week and drift_week+1 were not.
        first = next_weekly(person.checkin_day, parse_hhmm(person.checkin_time), "Europe/London", result.config.start)
        second_unanswered: datetime = first + timedelta(weeks=person.drift_week + 1)
        assert result.drifter_flagged_at[person.external_id] == second_unanswered + wait, person
        # Their last text came a little after the last check-in they answered.
        assert 14 * 86400 + wait.total_seconds() - 10 * 3600 <= result.drifter_lags[person.external_id] * 86400
        assert result.drifter_lags[person.external_id] <= 14 + wait.total_seconds() / 86400


def test_steady_repliers_who_always_answer_are_never_flagged(tiny: object) -> None:
    result = tiny
    assert sum(p.group == "steady" for p in result.people) > 0
    assert result.flags_by_group.get("steady", {}).get("not_responding", 0) == 0
    assert result.steady_flagged == []
    assert result.false_flags_per_specialist_week == 0


def test_the_report_meets_the_aims_it_can_judge(tiny: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert year.report(tiny, aims_apply=False) is True
    out = capsys.readouterr().out
    assert "median" in out and "per specialist per week" in out and "peak memory" in out
    assert "MISSED" not in out
