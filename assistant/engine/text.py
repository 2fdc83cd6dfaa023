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
