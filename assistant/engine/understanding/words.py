"""Words as people text them: plain letters, light stems, and how far one spelling is from another."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

MIN_FUZZY = 5  # words shorter than this are only read through the text-speak list
NOT_WORD = re.compile(r"[^a-z0-9 ]+")

_LEET = {"1": "i", "!": "i", "3": "e", "0": "o", "4": "a", "@": "a", "$": "s", "5": "s", "*": "i", "|": "i"}
_IN_WORD = re.compile(r"(?<=[a-z])[1!30@$5*|4]+(?=[a-z])")
_SPELT_OUT = re.compile(r"\b(?:[a-z] ){3,}[a-z]\b")


@lru_cache(maxsize=1 << 16)  # a few thousand words come back again and again: patterns' and texts'
def stem(word: str) -> str:
    """A light suffix-stripper: enough to make harm/harms/harming/harmed one word.

    Applied to the patterns and to the text alike, so it only has to be consistent,
    not linguistically right.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix in ("ingly", "ings", "ing", "edly", "ied", "ies", "ed", "es", "ly", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            if suffix in ("ied", "ies"):
                base += "y"
            if suffix == "s" and base.endswith(("s", "u", "i")):
                return word  # "less", "bus", "this"
            if len(base) > 3 and base[-1] == base[-2] and base[-1] not in "lsz" and base[-1] not in "aeiou":
                base = base[:-1]  # cutting -> cut, stopped -> stop
            return base.rstrip("e") if len(base) > 3 else base
    return word


# Words so common that a pattern anchored on them would be tried on almost every text, and
# that say nothing alone to the classifier.
COMMON = frozenset(
    stem(w)
    for w in [
        "i",
        "me",
        "my",
        "you",
        "your",
        "it",
        "is",
        "am",
        "are",
        "was",
        "be",
        "been",
        "to",
        "of",
        "the",
        "a",
        "an",
        "and",
        "or",
        "not",
        "no",
        "do",
        "did",
        "can",
        "will",
        "would",
        "could",
        "should",
        "have",
        "has",
        "had",
        "in",
        "on",
        "at",
        "for",
        "with",
        "this",
        "that",
        "so",
        "just",
        "what",
        "how",
        "why",
        "when",
        "if",
        "all",
        "now",
    ]
)


def osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (a swap of two letters counts once), capped."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def deletes(word: str, depth: int) -> set[str]:
    """The word with up to `depth` letters left out, every way (the word itself included)."""
    found = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        found |= frontier
    return found


def fuzzy_depth(word: str) -> int:
    """How many letters a misspelling of this word may get wrong."""
    return 2 if len(word) >= 8 else 1


# The emoji presentation selector ("❤️" is "❤" and it): emoji are looked up without it.
VARIATION = "\ufe0f"


_HE_SHE_WILL = re.compile(r"\b(he|she)[\u2018\u2019\u02bc`']ll\b")
_HE_SHE_D = re.compile(r"\b(he|she)[\u2018\u2019\u02bc`']d\s+(\w+)")
# "he'd taken" is "he had", "he'd end me" is "he would": a participle after it says which.
_PARTICIPLES = frozenset({"gone", "done", "been", "got", "left", "took", "tried", "said", "had", "seen", "found"})


def _had_or_would(match: re.Match[str]) -> str:
    who, after = match.group(1), match.group(2)
    had = after in _PARTICIPLES or after.endswith(("ed", "en"))
    return f"{who} {'had' if had else 'would'} {after}"


def simplify(text: str) -> str:
    """Lower case, plain letters, no apostrophes: "Don’t" -> "dont", "café" -> "cafe", "su1c1de" ->
    "suicide", "k*ll" -> "kill", "s u i c i d e" -> "suicide"."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    # "he'll", "she'll", "he'd" and "she'd" are read before the apostrophe goes: without it they
    # are "hell", "shell", "hed" (a misspelt "head") and "shed".
    text = _HE_SHE_WILL.sub(r"\1 will", text)
    text = _HE_SHE_D.sub(_had_or_would, text)
    text = re.sub(r"[\u2018\u2019\u02bc`']", "", text)
    text = _IN_WORD.sub(lambda m: "".join(_LEET[c] for c in m.group(0)), text)
    text = _SPELT_OUT.sub(lambda m: m.group(0).replace(" ", ""), text)
    return text.replace("&", " and ")


def skeleton(word: str) -> str:
    """Consonants only, runs of one letter as one: "sooisidal" -> "ssdl", "suicide" -> "scd"."""
    consonants = [c for c in word[1:] if c not in "aeiouy"]
    return re.sub(r"(.)\1+", r"\1", word[0].replace("y", "") + "".join(consonants)) if word else word
