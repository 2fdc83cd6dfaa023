"""The missed-appointment ladder setting, and texts spread over the times of day a person allows."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from assistant.contact.dna_ladder import text_time, working_day_at
from assistant.db.dna_steps import DEFAULT_LADDER, parse_ladder, text_wording
from assistant.db.models import Participant
from assistant.db.service_settings import ServiceSettings


def test_the_default_tapers_across_media_within_about_a_month() -> None:
    steps = parse_ladder(DEFAULT_LADDER)
    assert [(s.channel, s.day) for s in steps] == [("sms", 0), ("call", 3), ("sms", 7), ("letter", 14), ("review", 28)]
    # The first text is the warm opener, the last says there is no hurry.
    assert [text_wording(steps, i) for i in (0, 2)] == [1, 4]


@pytest.mark.parametrize(
    ("ladder", "problem"),
    [
        (["sms:1", "review:7"], "first step"),
        (["letter:0", "review:7"], "first step"),
        (["sms:0", "call:3"], "last step"),
        (["sms:0", "review:3", "call:5", "review:9"], "last step"),
        (["sms:0", "call:3", "sms:3", "review:9"], "later day"),
        (["sms:0", "fax:3", "review:9"], "not a step"),
        (["sms:0", "review:120"], "at most day"),
        (["sms:0"], "2 to 8 steps"),
    ],
)
def test_a_ladder_that_cannot_work_is_refused(ladder: list[str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ServiceSettings.from_json({"dna_ladder": ladder})


def _person(allowed_from: str | None = None, allowed_until: str | None = None) -> Participant:
    return Participant(
        service_id=1,
        external_id="P1",
        first_name="Alex",
        phone="+447700900101",
        specialist_id=1,
        allowed_from=allowed_from,
        allowed_until=allowed_until,
    )


def _local(at: object) -> str:
    return f"{at.astimezone(ZoneInfo('Europe/London')):%H:%M}"  # type: ignore[attr-defined]


def test_texts_take_the_services_times_in_turn_avoiding_those_used() -> None:
    settings, person, day = ServiceSettings(), _person(), date(2026, 12, 4)
    assert _local(text_time(day, ["16:00"], person, settings)) == "14:00"
    assert _local(text_time(day, ["16:00", "14:00"], person, settings)) == "17:30"
    assert _local(text_time(day, ["14:05"], person, settings)) == "17:30"  # 14:00 is too close to 14:05


def test_a_narrow_evening_window_still_gets_different_times_of_day() -> None:
    settings, person, day = ServiceSettings(), _person("17:30", "20:00"), date(2026, 12, 4)
    first = _local(text_time(day, [], person, settings))
    second = _local(text_time(day, [first], person, settings))
    third = _local(text_time(day, [first, second], person, settings))
    assert (first, second, third) == ("17:30", "18:45", "19:30")


def test_tasks_for_the_specialist_land_on_working_days() -> None:
    settings = ServiceSettings()
    assert f"{working_day_at(date(2026, 12, 5), settings, 'Europe/London'):%a %d %H:%M}" == "Mon 07 09:00"
    assert f"{working_day_at(date(2026, 12, 25), settings, 'Europe/London'):%a %d}" == "Tue 29"
