"""The participant's contact windows as a specialist enters them: one window (which may cross
midnight, 22:00 until 02:00), or two parts (before and after work)."""

from __future__ import annotations

from assistant.timing import parse_hhmm
from assistant.windows import Window, check_windows, format_windows, inside, parse_windows


def participant_windows(
    allowed_from: str, allowed_until: str, second: str, checkin_time: str
) -> tuple[str | None, str | None]:
    """(contact_windows to store or None for one window, a problem to show or None)."""
    first: Window = (parse_hhmm(allowed_from), parse_hhmm(allowed_until))
    windows: list[Window] = [first]
    if second.strip():
        try:
            windows += list(parse_windows(second.strip()))
        except ValueError:
            return None, "Give the second window as HH:MM-HH:MM, for example 17:30-20:00."
    try:
        check_windows(windows)
    except ValueError:
        if first[0] == first[1]:
            return None, "Allowed hours must not start and end at the same time."
        return None, "Give at most two windows that do not overlap."
    if not inside(parse_hhmm(checkin_time), windows):
        return None, "The check-in time must be inside the allowed hours."
    return (format_windows(sorted(windows)) if len(windows) > 1 else None), None
