"""Reading what people type: normalising replies, and the carrier's own keywords."""

from __future__ import annotations

import re
import unicodedata

_PUNCTUATION = re.compile(r"[^\w\s']+", re.UNICODE)
_SPACES = re.compile(r"\s+")

# Twilio's own opt-out and opt-in words: single-word messages only. A fact of the carrier,
# not a choice of the service, so it lives here rather than in the phrase files.
OPT_OUT_WORDS = frozenset({"stop", "unsubscribe", "end", "quit", "stopall", "revoke", "optout", "cancel"})
OPT_IN_WORDS = frozenset({"start", "yes", "unstop"})
HELP_WORDS = frozenset({"help", "info"})


def normalise(text: str) -> str:
    """Lower-case, strip accents' oddities, punctuation and extra spaces."""
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").lower()
    text = _PUNCTUATION.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


# Said after a one-word reply without changing it: "YES please", "yes x", "Yes, thank you".
_COURTESY = frozenset(
    {"please", "pls", "plz", "thanks", "thank", "you", "thankyou", "ta", "cheers", "ok", "okay", "mate"}
)


def without_courtesy(text: str) -> str:
    """The normalised text without thanks or kisses after it: "2 thanks x" -> "2"."""
    words = normalise(text).split()
    while len(words) > 1 and (words[-1] in _COURTESY or set(words[-1]) == {"x"}):
        words.pop()
    return " ".join(words)


def says_only(text: str, word: str) -> bool:
    """The text is the word, perhaps with thanks or kisses after it ("YES please x")."""
    return without_courtesy(text) == word


def keyword(text: str) -> str | None:
    """A whole message that is one of the carrier's keywords (or HELP), or None."""
    words = normalise(text)
    if words in OPT_OUT_WORDS:
        return "opt_out"
    if words in OPT_IN_WORDS:
        return "opt_in"
    if words in HELP_WORDS:
        return "help"
    return None
