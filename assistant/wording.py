"""Words that must not show on a participant's lock screen (DOMAIN.md section 3)."""

from __future__ import annotations

LOCK_SCREEN_WORDS = (
    "mental health",
    "therapy",
    "therapies",
    "depression",
    "anxiety",
    "phq",
    "gad",
    "iapt",
    "talking therapies",
    "benefit",
    "sanction",
)


def lock_screen_words(text: str) -> list[str]:
    lowered = text.lower()
    return [word for word in LOCK_SCREEN_WORDS if word in lowered]
