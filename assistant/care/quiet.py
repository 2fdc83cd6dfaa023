"""Quiet hours and bank holidays: when an automated text may arrive."""

from __future__ import annotations

from datetime import date, datetime, time
from functools import lru_cache
from typing import Protocol

import holidays

from assistant.db.service_settings import ServiceSettings
from assistant.timing import parse_hhmm
from assistant.windows import Window, next_open, parse_windows


class Hours(Protocol):
    """Whose hours: a participant, or the few columns of one a batch reads."""

    @property
    def timezone(self) -> str: ...
    @property
    def allowed_from(self) -> str | None: ...
    @property
    def allowed_until(self) -> str | None: ...


@lru_cache(maxsize=16)
def _holidays(region: str, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("GB", subdiv=region, years=year)


def is_bank_holiday(day: date, region: str) -> bool:
    return day in _holidays(region, day.year)


def allowed_window(participant: Hours, service: ServiceSettings) -> tuple[time, time]:
    start = parse_hhmm(participant.allowed_from or service.quiet_until)
    end = parse_hhmm(participant.allowed_until or service.quiet_from)
    return start, end


def allowed_windows(participant: Hours, service: ServiceSettings) -> tuple[Window, ...]:
    """The participant's own windows (two parts, or crossing midnight), else their hours, else the service's."""
    own = getattr(participant, "contact_windows", None)
    return parse_windows(own) if own else (allowed_window(participant, service),)


def _day_allowed(day: date, service: ServiceSettings) -> bool:
    if not service.send_on_weekends and day.weekday() >= 5:
        return False
    return not is_bank_holiday(day, service.holiday_region)


def next_allowed(at: datetime, participant: Hours, service: ServiceSettings) -> datetime:
    """`at` itself if a text may arrive then, else the start of the next allowed time."""
    return next_open(
        at, allowed_windows(participant, service), participant.timezone, lambda d: _day_allowed(d, service)
    )


def is_allowed(at: datetime, participant: Hours, service: ServiceSettings) -> bool:
    return next_allowed(at, participant, service) == at
