"""Reading what people type: normalising replies and spotting keywords."""

from __future__ import annotations

import re
import unicodedata

_PUNCTUATION = re.compile(r"[^\w\s']+", re.UNICODE)
_SPACES = re.compile(r"\s+")

# Twilio's own opt-out and opt-in words: single-word messages only.
OPT_OUT_WORDS = frozenset({"stop", "unsubscribe", "end", "quit", "stopall", "revoke", "optout", "cancel"})
OPT_IN_WORDS = frozenset({"start", "yes", "unstop"})
HELP_WORDS = frozenset({"help", "info"})
CALL_PHRASES = frozenset(
    {
        "call",
        "call me",
        "call me please",
        "please call",
        "please call me",
        "can you call me",
        "could you call me",
        "ring me",
        "ring me please",
        "please ring me",
        "can you ring me",
        "phone me",
        "please phone me",
    }
)


def normalise(text: str) -> str:
    """Lower-case, strip accents' oddities, punctuation and extra spaces."""
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").lower()
    text = _PUNCTUATION.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def keyword(text: str) -> str | None:
    """Classify a whole message as one of the global keywords, or None."""
    words = normalise(text)
    if words in OPT_OUT_WORDS:
        return "opt_out"
    if words in OPT_IN_WORDS:
        return "opt_in"
    if words in HELP_WORDS:
        return "help"
    if words in CALL_PHRASES:
        return "call"
    return None


# Phrases that read like a crisis. The assistant never judges risk: a match only
# means a person is told at once and the participant is signposted to help.
CRISIS_PHRASES = (
    "kill myself",
    "killing myself",
    "end my life",
    "end it all",
    "take my own life",
    "take my life",
    "suicide",
    "suicidal",
    "want to die",
    "wanna die",
    "better off dead",
    "hurt myself",
    "hurting myself",
    "harm myself",
    "self harm",
    "selfharm",
    "cut myself",
    "cutting myself",
    "overdose",
    "no reason to live",
    "nothing to live for",
    "can't go on",
    "cant go on",
    "don't want to be here anymore",
    "dont want to be here anymore",
    "don't want to be alive",
    "dont want to be alive",
)


def reads_like_crisis(text: str) -> bool:
    words = f" {normalise(text)} "
    return any(f" {phrase} " in words for phrase in CRISIS_PHRASES)


# Free text asking for the texts (or the support) to stop. Twilio does not block on
# these, so the assistant asks once whether the texts should stop, and tells the specialist.
STOP_PHRASES = (
    "stop texting",
    "stop messaging",
    "stop the texts",
    "stop sending",
    "stop contacting",
    "no more texts",
    "no more messages",
    "don't text me",
    "dont text me",
    "don't message me",
    "dont message me",
    "don't contact me",
    "dont contact me",
    "leave me alone",
    "take me off",
    "remove me",
    "unsubscribe me",
    "want to leave the programme",
    "want to leave the program",
    "want to leave",
    "want to stop the support",
    "don't want the support",
    "dont want the support",
    "not interested any more",
    "not interested anymore",
    "no longer interested",
    "not interested",
)


def wants_to_stop(text: str) -> bool:
    words = f" {normalise(text)} "
    return any(f" {phrase} " in words for phrase in STOP_PHRASES)
