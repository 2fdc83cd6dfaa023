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
# voluntary, nothing may threaten benefits or demand attendance or a reply). Each is named as a
# reviewer would, with the forms that say it: "if you don't reply", "could be sanctioned".
_IF_NOT = r"if you (?:don't|dont|do not|fail to|won't|wont|will not|can't|cannot)"
_MAY_BE = r"(?:could|may|might|will|would|can) (?:be|get)"
_TOLD = r"(?:tell|inform|notify|report (?:you )?to) (?:the |your )?(?:jobcentre|job centre|work coach|dwp|benefits)"
PRESSURE_FORMS: dict[str, str] = {
    "if you don't attend": _IF_NOT + r" (?:attend|come|turn up|show up)",
    "if you don't reply": _IF_NOT + r" (?:reply|respond|answer|engage|take part|get in touch|contact us|keep in touch)",
    "if you fail": r"if you fail",
    "failure to": r"failure to",
    "you must": r"you must",
    "must attend": r"must (?:attend|reply|respond)",
    "you have to": (
        r"you (?:have|need|are expected|are obliged|are obligated) to"
        r" (?:reply|respond|answer|attend|come|turn up|take part|engage)"
    ),
    "you are required": r"you are required|you're required",
    "mandatory": r"mandatory",
    "compulsory": r"compulsory",
    "will stop": r"(?:will|may|might|could|would) (?:be )?stop(?:ped)?",
    "be stopped": r"be stopped",
    "sanctioned": r"(?:be|get|being|getting) sanctioned|sanctions? (?:on|against|to) your|a sanction",
    # Said of them or theirs ("your payments could be cut"), not of the office ("will be closed Monday").
    "be cut": r"(?:you|your\s+\w+(?:\s+\w+)?)\s+"
    + _MAY_BE
    + r" (?:cut|reduced|suspended|affected|closed|discharged|taken off|removed)",
    "lose your": r"lose your",
    "or your place": r"or your place",
    "we will tell": r"(?:we|i) (?:will|'ll|may|might|could|have to|must) " + _TOLD,
    "last chance": r"last chance",
    "final warning": r"final warning",
}
PRESSURE_PHRASES = tuple(PRESSURE_FORMS)
_PRESSURE = re.compile(
    "|".join(rf"(?P<t{n}>\b(?:{form})\b)" for n, form in enumerate(PRESSURE_FORMS.values())), re.IGNORECASE
)


def pressure_phrases(text: str) -> list[str]:
    """Every phrase of pressure in the text, as written there (lower case, each once, in order)."""
    lowered = " ".join(text.lower().replace("\u2019", "'").split())
    found: list[str] = []
    for match in _PRESSURE.finditer(lowered):
        if match.group(0) not in found:
            found.append(match.group(0))
    return found
