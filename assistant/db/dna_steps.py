"""The missed-appointment ladder as a service writes it: steps of a channel and a day.

A step is "channel:day", e.g. "sms:0", "call:3", "letter:14", "review:28". Day N is N days
after the day the missed appointment was recorded (day 0: as soon as a text may arrive,
within the service's first-contact hours). Channels:

- sms: a text from the assistant, in the specialist's voice;
- call, email, letter: a task on the specialist's Today list; they log it when done;
- review: the last step, a flag asking the specialist to consider next steps with the person.

Nothing here reads the clock or the database: it only checks and reads the setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

SMS = "sms"
TASK_CHANNELS = ("call", "email", "letter")
REVIEW = "review"
CHANNELS = (SMS, *TASK_CHANNELS, REVIEW)
MAX_STEPS = 8
MAX_DAY = 90
# The default: a taper over about a month, across media, then a person decides what next.
DEFAULT_LADDER = ("sms:0", "call:3", "sms:7", "letter:14", "review:28")


@dataclass(frozen=True)
class Step:
    channel: str
    day: int

    def __str__(self) -> str:
        return f"{self.channel}:{self.day}"


def parse_step(text: str) -> Step:
    channel, sep, day = text.strip().lower().partition(":")
    if not sep or channel not in CHANNELS or not day.strip().isdigit():
        raise ValueError(f"dna_ladder: {text!r} is not a step like sms:0, call:3 or letter:14")
    return Step(channel, int(day))


def parse_ladder(steps: tuple[str, ...] | list[str]) -> list[Step]:
    """The steps, checked: the first on day 0 by text or call, later steps on later days, review last."""
    parsed = [parse_step(s) for s in steps]
    if not 2 <= len(parsed) <= MAX_STEPS:
        raise ValueError(f"dna_ladder needs 2 to {MAX_STEPS} steps, the last one review:DAY")
    first, last = parsed[0], parsed[-1]
    if first.day != 0 or first.channel not in (SMS, "call"):
        raise ValueError("dna_ladder: the first step is sms:0 or call:0 (first contact within hours)")
    if last.channel != REVIEW or any(s.channel == REVIEW for s in parsed[:-1]):
        raise ValueError("dna_ladder: the last step, and only the last, is review:DAY")
    days = [s.day for s in parsed]
    if any(later <= earlier for earlier, later in pairwise(days)):
        raise ValueError("dna_ladder: each step is on a later day than the one before")
    if last.day > MAX_DAY:
        raise ValueError(f"dna_ladder: the review is at most day {MAX_DAY}")
    return parsed


def text_wording(steps: list[Step], index: int) -> int:
    """Which follow-up wording a text step uses: 1 for the first text, 4 ("I haven't heard back,
    and that's OK") for the last of several, 2 and 3 for any in between."""
    texts = [i for i, s in enumerate(steps) if s.channel == SMS]
    ordinal = texts.index(index) + 1
    if ordinal == 1:
        return 1
    if ordinal == len(texts):
        return 4
    return min(ordinal, 3)
