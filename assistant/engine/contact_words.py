"""The details in a participant's own words about their contact: how many weeks, which day,
what time of day, a phone number, a code. Pure: text in, values out.

The understanding module says what a text asks for (a pause, fewer texts, another day);
these read the particulars it needs ("a couple of weeks" is 2, "thursdays" is Thursday,
"after 6pm" is 18:30).
"""

from __future__ import annotations

import re

from assistant.engine.understanding import simplify

_WEEK_WORDS = {
    "one": 1, "a": 1, "1": 1, "two": 2, "2": 2, "couple": 2, "three": 3, "3": 3, "four": 4, "4": 4,
}  # fmt: skip
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_WORDS = {
    **{d: i for i, d in enumerate(DAYS)},
    "mon": 0, "tue": 1, "tues": 1, "weds": 2, "wed": 2, "thu": 3, "thur": 3, "thurs": 3, "fri": 4,
}  # fmt: skip
# A part of the day, as the time a weekly text goes then.
PARTS_OF_DAY = {
    "morning": "09:30", "mornings": "09:30", "lunchtime": "12:30", "lunch": "12:30", "dinnertime": "12:30",
    "afternoon": "14:00", "afternoons": "14:00", "evening": "18:30", "evenings": "18:30", "teatime": "17:30",
}  # fmt: skip
_CLOCK = re.compile(r"\b(before|after|at|around|about|from|by)?\s*(\d{1,2})(?:[:.](\d{2}))?\s*(am|pm)?\b")
_PHONE = re.compile(r"(?:\+44\s?|0044\s?|\b0)7\d{3}\s?\d{3}\s?\d{3}\b")
_CODE = re.compile(r"(?<![\d+])(\d{6})(?!\d)")


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9 ]+", " ", simplify(text)).split()


def weeks_in(text: str) -> int | None:
    """1 for "a week", "1" or "one week"; 2 for "2", "a fortnight" or "a couple of weeks"; 4 for "4" or
    "a month". A bare number (the reply to "1, 2 or 4?") counts too. None if no length is named."""
    words = _words(text)
    if any(w in ("fortnight", "fortnights") for w in words):
        return 2
    if any(w in ("month", "months") for w in words):
        return 4
    for index, word in enumerate(words):
        if word in ("week", "weeks", "wk", "wks"):
            before = [w for w in words[max(0, index - 3) : index] if w in _WEEK_WORDS]
            return _WEEK_WORDS[before[-1]] if before else 1
    numbers = [w for w in words if w in _WEEK_WORDS and w != "a"]
    return _WEEK_WORDS[numbers[0]] if len(words) <= 3 and numbers else None


def day_in(text: str) -> int | None:
    """The day of the week named (Monday is 0): "thursdays", "Thurs", "on a friday"."""
    for word in _words(text):
        for form in (word, word.removesuffix("s")):
            if form in _DAY_WORDS and (len(form) > 3 or form == word):
                return _DAY_WORDS[form]
    return None


def _clock_time(hour: int, minute: int, half: str | None) -> tuple[int, int] | None:
    if half == "pm" and hour < 12:
        hour += 12
    elif half == "am" and hour == 12:
        hour = 0
    elif half is None and 1 <= hour <= 7:
        hour += 12  # "after 6" is the evening: nobody asks for texts at 6 in the morning by a bare 6
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    return hour, minute


def time_in(text: str) -> str | None:
    """The local time a weekly text should go, as HH:MM: "after 6pm" is 18:30 (a while after, not
    on the hour), "before 9am" is 08:30, "at 7.15pm" is 19:15, "mornings" is 09:30."""
    plain = simplify(text)
    for match in _CLOCK.finditer(plain):
        word, hour, minute, half = match.group(1), int(match.group(2)), int(match.group(3) or 0), match.group(4)
        if word is None and half is None and match.group(3) is None:
            continue  # a bare number is not a time
        found = _clock_time(hour, minute, half)
        if found is None:
            continue
        total = found[0] * 60 + found[1] + (30 if word == "after" else -30 if word == "before" else 0)
        total = max(0, min(total, 23 * 60 + 59))
        return f"{total // 60:02d}:{total % 60:02d}"
    for word in _words(text):
        if word in PARTS_OF_DAY:
            return PARTS_OF_DAY[word]
    return None


def phone_in(text: str) -> str | None:
    """A UK mobile number written in the text, as written (the caller checks and formats it)."""
    match = _PHONE.search(text)
    return match.group(0) if match else None


def code_in(text: str) -> str | None:
    """A six-digit code in the text (not part of a phone number)."""
    without_numbers = _PHONE.sub(" ", text)
    match = _CODE.search(without_numbers.replace(" ", "") if len(without_numbers.strip()) <= 9 else without_numbers)
    return match.group(1) if match else None
