"""A questionnaire answered in one text as a numbered list ("1) 3 2) 2 ... 9) 3"), read for its risk items."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# An item number and its answer, with a mark between ("9) 3", "q9: 3", "9 - 3", "9=3"), or a word
# naming the item and a space ("question 9 3"). Single digits only, so times and dates rarely fit.
# The frequency scale's words count as its numbers ("9) several days").
_SCALE_WORDS = {"not at all": 0, "several days": 1, "more than half": 2, "nearly every day": 3}
_ANSWER = re.compile(
    r"(?<![\d:/])(?:(?:q|question|item|no|number)\s*\.?\s*(\d)\s*[).:=-]?\s*|(\d)\s*[).:=-]\s*)"
    r"([0-3](?![\d:/])|" + "|".join(_SCALE_WORDS) + ")",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class NumberedAnswers:
    """From the phrase files: how many numbered answers make a list, and each risk item's lowest
    answer that is risk (PHQ-9 item 9, thoughts of being better off dead, from "several days")."""

    label: str  # what the reading says it found, on the record and in the flag
    least_items: int
    risk_from: Mapping[int, int]

    def risk_in(self, text: str) -> str | None:
        """The words of a risk item answered at or above its mark, in a text that is such a list."""
        answers: dict[int, tuple[int, str]] = {}
        for found in _ANSWER.finditer(text):
            item = int(found.group(1) or found.group(2))
            answer = found.group(3).lower()
            value = _SCALE_WORDS[answer] if answer in _SCALE_WORDS else int(answer)
            answers.setdefault(item, (value, found.group(0).strip()))
        if len(answers) < self.least_items:
            return None
        return next(
            (words for item, (value, words) in answers.items() if value >= self.risk_from.get(item, 99)),
            None,
        )
