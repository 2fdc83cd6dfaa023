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


# Phrases that read like compliance or pressure (DOMAIN.md section 3: the programme is
# voluntary, nothing may threaten benefits or demand attendance).
PRESSURE_PHRASES = (
    "if you don't attend",
    "if you do not attend",
    "if you don't come",
    "if you don't turn up",
    "if you fail",
    "failure to",
    "you must",
    "must attend",
    "you are required",
    "mandatory",
    "compulsory",
    "will stop",
    "may stop",
    "be stopped",
    "lose your",
    "or your place",
    "last chance",
    "final warning",
)


def pressure_phrases(text: str) -> list[str]:
    lowered = " ".join(text.lower().replace("\u2019", "'").split())
    return [phrase for phrase in PRESSURE_PHRASES if phrase in lowered]
