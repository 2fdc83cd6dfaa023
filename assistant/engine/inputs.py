"""What can wake a waiting flow."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    """A text from the participant."""

    text: str
    # The choice the text was read as, by the understanding module; None: match the words here.
    choice: str | None = None


@dataclass(frozen=True)
class Timeout:
    """The wait ran out with no reply."""


@dataclass(frozen=True)
class Interrupt:
    """Something outside the flow answered or ended it (a CALL request, an opt-out)."""

    value: str
    raw: str | None = None
    # The same text also answered the question: kept as the answer, and the flow still ends.
    answer: str | None = None


Input = Reply | Timeout | Interrupt
