"""Contact windows that fit lives: the local hours in which automated texts may arrive.

A window is a start and an end in local wall-clock time. One that ends at or before its
start crosses midnight (a night shift worker's 22:00-02:00 opens at 22:00 and closes at
02:00 the next morning). A participant may have two parts in a day (before work and
after work: "06:00-07:30,17:30-20:00").

Which day a window belongs to is the day it opens: a 22:00-02:00 window opened on the
evening before a bank holiday may run into it, and none opens on the holiday itself.
Daylight saving is handled by `local_at`: a wall time that does not exist on the spring
change day is read an hour on, and on the autumn change day the first of the two is used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from assistant.timing import local_at, parse_hhmm

Window = tuple[time, time]
MAX_PARTS = 2
SEARCH_DAYS = 15


def crosses_midnight(window: Window) -> bool:
    return window[1] <= window[0]


def _minutes(window: Window) -> set[int]:
    """The minutes of the day a window covers (one crossing midnight wraps round)."""
    start = window[0].hour * 60 + window[0].minute
    end = window[1].hour * 60 + window[1].minute
    length = (end - start) % (24 * 60)
    return {(start + m) % (24 * 60) for m in range(length)}


def parse_windows(text: str) -> tuple[Window, ...]:
    """ "06:00-07:30,17:30-20:00" -> two windows; "22:00-02:00" -> one crossing midnight."""
    windows: list[Window] = []
    for part in text.split(","):
        start, dash, end = part.strip().partition("-")
        if not dash:
            raise ValueError(f"not a window like 08:00-20:00: {part.strip()!r}")
        windows.append((parse_hhmm(start), parse_hhmm(end)))
    check_windows(windows)
    return tuple(sorted(windows))


def check_windows(windows: Sequence[Window]) -> None:
    if not 1 <= len(windows) <= MAX_PARTS:
        raise ValueError(f"give one or {MAX_PARTS} windows")
    covered: set[int] = set()
    for window in windows:
        if window[0] == window[1]:
            raise ValueError("a window must not start and end at the same time")
        minutes = _minutes(window)
        if minutes & covered:
            raise ValueError("the two windows must not overlap")
        covered |= minutes


def format_windows(windows: Sequence[Window]) -> str:
    return ",".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in windows)


def describe(windows: Sequence[Window]) -> str:
    """Plain words for a text or a page: '22:00 to 02:00', '06:00 to 07:30 and 17:30 to 20:00'."""
    return " and ".join(f"{a:%H:%M} to {b:%H:%M}" for a, b in windows)


def inside(at: time, windows: Sequence[Window]) -> bool:
    """Whether a wall-clock time falls in one of the windows."""
    return (at.hour * 60 + at.minute) in set().union(*(_minutes(w) for w in windows))


def openings(day: date, windows: Sequence[Window], tz: str) -> list[tuple[datetime, datetime]]:
    """The UTC instants each window opening on `day` opens and closes."""
    found = []
    for start, end in windows:
        closes_on = day + timedelta(days=1) if crosses_midnight((start, end)) else day
        found.append((local_at(day, start, tz), local_at(closes_on, end, tz)))
    return found


def next_open(
    at: datetime, windows: Sequence[Window], tz: str, day_allowed: Callable[[date], bool] = lambda _d: True
) -> datetime:
    """`at` itself if it falls in an open window, else the next moment one opens."""
    local_day = at.astimezone(ZoneInfo(tz)).date()
    # From yesterday: a window that opened last night may still be open.
    for offset in range(-1, SEARCH_DAYS):
        day = local_day + timedelta(days=offset)
        if not day_allowed(day):
            continue
        for opens, closes in sorted(openings(day, windows, tz)):
            if at < opens:
                return opens
            if at < closes:
                return at
    raise ValueError("no allowed time in the next two weeks: check the contact windows and weekend settings")
