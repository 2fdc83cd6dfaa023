"""Words that must not show on a participant's lock screen (DOMAIN.md section 3), and phrases
that read like pressure. The one checker: used when content loads (message templates, and
which questionnaire items may go by text without the participant's say-so), by the dashboard
and campaign previews, and by the message tests.

Each entry names a giveaway as a reviewer would, with the word forms that give it away. Forms
are matched as whole words, case-insensitively, so "depressed" and "anxious" are caught while
"deadline", "skills", "harmless" and "gadget" are not.
"""

from __future__ import annotations

import re

LOCK_SCREEN_FORMS: dict[str, str] = {
    "mental health": r"mental(?:ly)?[\s-]*(?:health|ill|illness(?:es)?)",
    "therapy": r"therap(?:y|ies|ist|ists|eutic)",
    "counselling": r"counsel(?:l)?(?:ing|or|ors)",
    "psychology": r"psych(?:ology|ological|ologist|ologists|iatry|iatric|iatrist|iatrists|osis|otic)",
    "depression": r"depress(?:ion|ions|ed|ive|ing|ant|ants)?",
    "anxiety": r"anxi(?:ety|eties|ous|ously)",
    "panic attack": r"panic[\s-]+attacks?",
    "suicide": r"suicid(?:e|es|al|ality)",
    "self-harm": r"self[\s-]*harm(?:s|ed|ing)?",
    "harm": r"harm(?:s|ed|ing|ful)?",
    "hurting yourself": r"hurt(?:s|ing)?\s+(?:yourself|myself|themselves|himself|herself)",
    "dead": r"dead|death|deaths|die|dies|died|dying",
    "kill": r"kill(?:s|ed|ing)?",
    "hopeless": r"hopeless(?:ness|ly)?",
    "diagnosis": r"diagnos(?:is|es|ed|tic)",
    "disorder": r"disorders?",
    "PHQ-9": r"phq(?:[\s-]*9)?",
    "GAD-7": r"gad(?:[\s-]*7)?",
    "WSAS": r"wsas",
    "work and social adjustment": r"work\s+and\s+social\s+adjustment",
    "IAPT": r"iapt",
    "benefits": r"benefits?",
    "sanction": r"sanction(?:s|ed|ing)?",
}
LOCK_SCREEN_WORDS = tuple(LOCK_SCREEN_FORMS)
_LOCK_SCREEN = re.compile(
    "|".join(rf"(?P<t{n}>\b(?:{form})\b)" for n, form in enumerate(LOCK_SCREEN_FORMS.values())), re.IGNORECASE
)


def lock_screen_words(text: str) -> list[str]:
    """Every giveaway in the text, as written there (lower case, each once, in order)."""
    found: list[str] = []
    for match in _LOCK_SCREEN.finditer(text.replace("\u2019", "'")):
        word = " ".join(match.group(0).lower().split())
        if word not in found:
            found.append(word)
    return found


def discreet(text: str) -> bool:
    """Nothing in this text gives away what the texts are about."""
    return _LOCK_SCREEN.search(text) is None


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
