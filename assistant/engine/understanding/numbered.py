"""A questionnaire answered in one text as a numbered list ("1) 3 2) 2 ... 9) 3"), read for its risk items."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


def answer_pattern(scale_words: Sequence[str]) -> re.Pattern[str]:
    """An item number and its answer, with a mark between ("9) 3", "q9: 3", "9 - 3", "9=3"), or a word
    naming the item and a space ("question 9 3"). Single digits only, so times and dates rarely fit.
    The scale's words count as its numbers ("9) several days")."""
    words = "|".join(re.escape(word) for word in sorted(scale_words, key=len, reverse=True))
    return re.compile(
        r"(?<![\d:/])(?:(?:q|question|item|no|number)\s*\.?\s*(\d)\s*[).:=-]?\s*|(\d)\s*[).:=-]\s*)"
        r"([0-3](?![\d:/])" + (f"|{words}" if words else "") + ")",
        re.IGNORECASE,
    )


@dataclass(frozen=True)
class NumberedAnswers:
    """From the phrase files: how many numbered answers make a list, each risk item's lowest answer
    that is risk (PHQ-9 item 9, thoughts of being better off dead, from "several days"), and the
    answer scale's words, the first for 0. The runtime checks the last two against the instruments."""

    label: str  # what the reading says it found, on the record and in the flag
    least_items: int
    risk_from: Mapping[int, int]
    scale_words: tuple[str, ...]
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _values: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Built once: every text is read for a numbered list.
        object.__setattr__(self, "_pattern", answer_pattern(self.scale_words))
        object.__setattr__(self, "_values", {word.lower(): value for value, word in enumerate(self.scale_words)})

    def risk_in(self, text: str) -> str | None:
        """The words of a risk item answered at or above its mark, in a text that is such a list."""
        answers: dict[int, tuple[int, str]] = {}
        for found in self._pattern.finditer(text):
            item = int(found.group(1) or found.group(2))
            answer = found.group(3).lower()
            value = self._values[answer] if answer in self._values else int(answer)
            answers.setdefault(item, (value, found.group(0).strip()))
        if len(answers) < self.least_items:
            return None
        return next(
            (words for item, (value, words) in answers.items() if value >= self.risk_from.get(item, 99)),
            None,
        )
