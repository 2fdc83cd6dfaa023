"""Contact windows: crossing midnight, two parts a day, and the daylight saving change days.

Every instant here is given (the clock is injected): nothing reads the real time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import pytest

from assistant.care.quiet import allowed_windows, is_allowed, next_allowed
from assistant.db.service_settings import ServiceSettings
from assistant.windows import describe, format_windows, inside, next_open, parse_windows

LONDON = "Europe/London"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class Person:
    timezone: str = LONDON
    allowed_from: str | None = None
    allowed_until: str | None = None
    contact_windows: str | None = None


def test_a_window_may_cross_midnight() -> None:
    night = parse_windows("22:00-02:00")
    # Winter: London is UTC.
    assert next_open(utc("2026-01-13T12:00"), night, LONDON) == utc("2026-01-13T22:00")
    assert next_open(utc("2026-01-13T23:30"), night, LONDON) == utc("2026-01-13T23:30")
    # After midnight the window opened last night is still open...
    assert next_open(utc("2026-01-14T01:59"), night, LONDON) == utc("2026-01-14T01:59")
    # ...and closes at 02:00: the next opening is that evening.
    assert next_open(utc("2026-01-14T02:00"), night, LONDON) == utc("2026-01-14T22:00")


def test_two_parts_a_day_before_and_after_work() -> None:
    windows = parse_windows("17:30-20:00,06:00-07:30")
    assert format_windows(windows) == "06:00-07:30,17:30-20:00"
    assert next_open(utc("2026-01-13T05:00"), windows, LONDON) == utc("2026-01-13T06:00")
    assert next_open(utc("2026-01-13T07:00"), windows, LONDON) == utc("2026-01-13T07:00")
    # Between the two parts: the evening one, not the next morning.
    assert next_open(utc("2026-01-13T07:30"), windows, LONDON) == utc("2026-01-13T17:30")
    assert next_open(utc("2026-01-13T20:00"), windows, LONDON) == utc("2026-01-14T06:00")
    assert describe(windows) == "06:00 to 07:30 and 17:30 to 20:00"
    assert inside(time(18, 0), windows) and not inside(time(12, 0), windows)


def test_windows_that_make_no_sense_are_refused() -> None:
    for bad in ("08:00-08:00", "06:00-09:00,08:00-10:00", "22:00-02:00,01:00-03:00", "0800-2000", "1-2,3-4,5-6"):
        with pytest.raises(ValueError):
            parse_windows(bad)


def test_a_night_window_on_the_spring_change_day() -> None:
    """29 Mar 2026: clocks go forward at 01:00 UTC (01:00 local becomes 02:00 BST)."""
    night = parse_windows("23:00-03:00")
    # Opens at 23:00 GMT on Saturday, closes at 03:00 BST on Sunday: 3 hours, not 4.
    assert next_open(utc("2026-03-28T22:00"), night, LONDON) == utc("2026-03-28T23:00")
    assert next_open(utc("2026-03-29T01:59"), night, LONDON) == utc("2026-03-29T01:59")
    assert next_open(utc("2026-03-29T02:00"), night, LONDON) == utc("2026-03-29T22:00")  # 23:00 BST
    # A window that starts in the hour that does not exist opens an hour on, at 02:30 BST.
    gap = parse_windows("01:30-04:00")
    assert next_open(utc("2026-03-28T23:00"), gap, LONDON) == utc("2026-03-29T01:30")


def test_a_night_window_on_the_autumn_change_day() -> None:
    """25 Oct 2026: clocks go back at 01:00 UTC (02:00 BST becomes 01:00 GMT)."""
    night = parse_windows("22:00-02:00")
    assert next_open(utc("2026-10-24T12:00"), night, LONDON) == utc("2026-10-24T21:00")  # 22:00 BST
    # 02:00 GMT on Sunday is 02:00 UTC: the window runs five hours that night.
    assert next_open(utc("2026-10-25T01:30"), night, LONDON) == utc("2026-10-25T01:30")
    assert next_open(utc("2026-10-25T02:00"), night, LONDON) == utc("2026-10-25T22:00")
    # An evening part keeps its wall-clock time either side of the change.
    evening = parse_windows("06:00-07:30,17:30-20:00")
    assert next_open(utc("2026-10-24T08:00"), evening, LONDON) == utc("2026-10-24T16:30")
    assert next_open(utc("2026-10-25T08:00"), evening, LONDON) == utc("2026-10-25T17:30")


def test_a_bank_holiday_opens_no_window_but_one_opened_the_evening_before_runs_on() -> None:
    service = ServiceSettings()
    night = Person(contact_windows="22:00-02:00")
    # Christmas Eve 22:00 opens; it runs into Christmas Day until 02:00.
    assert is_allowed(utc("2026-12-25T01:00"), night, service)
    # None opens on Christmas Day, Boxing Day or the substitute holiday on Monday 28th.
    assert next_allowed(utc("2026-12-25T02:00"), night, service) == utc("2026-12-27T22:00")
    assert next_allowed(utc("2026-12-28T02:00"), night, service) == utc("2026-12-29T22:00")


def test_own_windows_replace_the_hours_and_the_hours_may_cross_midnight() -> None:
    service = ServiceSettings()
    assert allowed_windows(Person(), service) == ((time(8), time(20)),)
    shift = Person(allowed_from="22:00", allowed_until="02:00")
    assert next_allowed(utc("2026-01-14T01:00"), shift, service) == utc("2026-01-14T01:00")
    assert next_allowed(utc("2026-01-14T12:00"), shift, service) == utc("2026-01-14T22:00")
    both = Person(allowed_from="09:00", allowed_until="17:00", contact_windows="06:00-07:30,17:30-20:00")
    assert next_allowed(utc("2026-01-14T12:00"), both, service) == utc("2026-01-14T17:30")


def test_days_not_allowed_are_skipped() -> None:
    weekdays = ServiceSettings(send_on_weekends=False)
    night = Person(contact_windows="22:00-02:00")
    # Friday night's window opens; Saturday's and Sunday's do not.
    assert next_allowed(utc("2026-01-17T03:00"), night, weekdays) == utc("2026-01-19T22:00")
    assert date(2026, 1, 17).weekday() == 5
