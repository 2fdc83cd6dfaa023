"""Local-time arithmetic for schedules: store UTC, plan in the participant's timezone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def local_at(day: date, at: time, tz: str) -> datetime:
    """The UTC instant of a wall-clock time on a local date (daylight saving correct)."""
    zone = ZoneInfo(tz)
    wall = datetime.combine(day, at, tzinfo=zone)
    # A time in the spring-forward gap does not exist: use the same wall time an hour on.
    round_trip = wall.astimezone(UTC).astimezone(zone)
    if round_trip.replace(tzinfo=None) != wall.replace(tzinfo=None):
        wall = datetime.combine(day, at, tzinfo=zone) + timedelta(hours=1)
    return wall.astimezone(UTC)


def parse_hhmm(text: str) -> time:
    hours, _, minutes = text.strip().partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2 and len(hours) in (1, 2)):
        raise ValueError(f"not a time like 10:30: {text!r}")
    return time(int(hours), int(minutes))


def next_weekly(day_of_week: int, at: time, tz: str, after: datetime) -> datetime:
    """The first `day_of_week` at `at` local time strictly after `after`."""
    local_today = after.astimezone(ZoneInfo(tz)).date()
    for offset in range(0, 8):
        day = local_today + timedelta(days=offset)
        if day.weekday() == day_of_week:
            candidate = local_at(day, at, tz)
            if candidate > after:
                return candidate
    raise AssertionError("unreachable: a weekday recurs within 8 days")


def weeks_later(previous: datetime, weeks: int, at: time, tz: str) -> datetime:
    """Same local weekday and wall time, `weeks` later: DST never shifts it by an hour."""
    local_day = previous.astimezone(ZoneInfo(tz)).date()
    return local_at(local_day + timedelta(weeks=weeks), at, tz)
