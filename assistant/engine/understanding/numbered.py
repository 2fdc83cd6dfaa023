"""A questionnaire answered in one text, read for its risk items: as a numbered list ("1) 3 2) 2 ...
9) 3"), or as every item's answer in order with no numbers ("0 0 1 2 3 0 1 1 1")."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


def answer_pattern(scale_words: Sequence[str]) -> re.Pattern[str]:
    """An item number and its answer, with a mark between ("9) 3", "q9: 3", "9 - 3", "9=3"), or a word
    naming the item and a space or a verb ("question 9 3", "Q9 is a 3", "q9 answer 2", "question 9 I
    ticked 2"). Single digits only, so times and dates rarely fit; a mark, a price or a time after the
    answer is no answer ("q9 is 2 marks", "2 for a fiver"). The scale's words count as its numbers
    ("9) several days")."""
    words = "|".join(re.escape(word) for word in sorted(scale_words, key=len, reverse=True))
    apostrophe = "['\u2019]?"
    verbs = (
        r"is|=|at|got|scored|answer(?:ed)?|i\s+(?:put(?:\s+down)?|said|gave(?:\s+it)?|ticked|answered|circled|chose|picked|marked)"
        + r"|i"
        + apostrophe
        + r"d\s+say"
    )
    said = r"(?:(?:" + verbs + r")\s+(?:an?\s+)?)?"
    not_a_unit = (
        r"(?!\s*(?:marks?|points?|out\s+of|for\s+a|pounds?|quid|p\b|%|minutes?|mins?|hours?|hrs?|[ap]m\b|o"
        + apostrophe
        + r"clock))"
    )
    return re.compile(
        r"(?<![\d:/])(?:\b(?:q|question|item)\s*\.?\s*(?P<named>\d)\s*[).:=-]?\s*"
        + said
        + r"|\b(?:no|number)\s*\.?\s*(?P<numbered>\d)\s*[).:=-]?\s*|(?P<bare>\d)\s*[).:=-]\s*)"
        + r"(?P<answer>[0-3](?![\d:/])"
        + (f"|{words}" if words else "")
        + ")"
        + not_a_unit,
        re.IGNORECASE,
    )


# Single answers (0-3) one after another, split by spaces, commas or dashes, and not part of a longer
# number, a time, a date, a sum of money or a percentage.
_IN_ORDER = re.compile(r"(?<![\w.:/£$%])[0-3](?:\s*[,;/ -]\s*[0-3](?!\w|[.:/]\d|%))+(?!\w|[.:/]\d|%)")


@dataclass(frozen=True)
class NumberedAnswers:
    """From the phrase files: how many numbered answers make a list, each risk item's lowest answer
    that is risk (PHQ-9 item 9, thoughts of being better off dead, from "several days"), and the
    answer scale's words, the first for 0. The runtime checks the last two against the instruments."""

    label: str  # what the reading says it found, on the record and in the flag
    least_items: int
    risk_from: Mapping[int, int]
    scale_words: tuple[str, ...]
    # A run of exactly this many answers with no item numbers is the questionnaire's items in order
    # (PHQ-9: nine); a shorter or longer run is something else (GAD-7 has seven items, none of risk).
    in_order: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _values: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Built once: every text is read for a numbered list.
        object.__setattr__(self, "_pattern", answer_pattern(self.scale_words))
        object.__setattr__(self, "_values", {word.lower(): value for value, word in enumerate(self.scale_words)})

    def risk_in(self, text: str) -> str | None:
        """The words of a risk item answered at or above its mark, in a text that is such a list."""
        answers: dict[int, tuple[int, str]] = {}
        named: set[int] = set()  # items the text calls by name ("q9 3", "question 9: 2")
        for found in self._pattern.finditer(text):
            named_as = found.group("named") or found.group("numbered")
            item = int(named_as or found.group("bare"))
            answer = found.group("answer").lower()
            value = self._values[answer] if answer in self._values else int(answer)
            answers.setdefault(item, (value, found.group(0).strip()))
            if named_as:
                named.add(item)
        # A list, or a risk item called by name on its own ("Q9 = 3"): a bare "9) 3" alone may be a time.
        risky = (
            words
            for item, (value, words) in answers.items()
            if value >= self.risk_from.get(item, 99) and (len(answers) >= self.least_items or item in named)
        )
        return next(risky, None) or self._risk_in_order(text)

    def _risk_in_order(self, text: str) -> str | None:
        if not self.in_order:
            return None
        for run in _IN_ORDER.finditer(text):
            values = [int(digit) for digit in re.findall(r"[0-3]", run.group(0))]
            if len(values) == self.in_order and any(
                values[item - 1] >= mark for item, mark in self.risk_from.items() if item <= len(values)
            ):
                return run.group(0)
        return None
