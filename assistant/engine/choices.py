"""Which of a question's choices a reply picks, from its words: the engine's own reading, which the
phrase reader (`understanding/reader.py`) builds on."""

from __future__ import annotations

import re

from assistant.engine.flow import Choice, Question
from assistant.engine.text import normalise, without_courtesy

# Words after a leading phrase that may turn its meaning around ("ok but not today").
_TURNS = frozenset(
    {
        "not",
        "no",
        "don't",
        "dont",
        "never",
        "but",
        "except",
        "although",
        "though",
        "stop",
        "isn't",
        "wasn't",
        "can't",
        "cant",
        "won't",
        "hardly",
    }
)
# Words that make a leading phrase an idiom, not the answer: "no problem, see you then" confirms.
_IDIOM_AFTER = frozenset(
    {"problem", "problems", "probs", "prob", "worries", "worry", "bother", "bovver", "drama", "wait", "idea"}
)


def match_choice(question: Question, text: str, strengtheners: frozenset[str] = frozenset()) -> Choice | None:
    """A number or phrase on its own, or a phrase followed by more words ("good thanks"), or a
    choice's number followed by words that go with it (`_number_first`).

    A leading phrase only counts when nothing after it could reverse it, and an `exact`
    choice only counts as the whole reply.
    """
    words = normalise(text)
    if not words:
        return None
    # "2 x" and "3 thanks" are the number: kisses and thanks after a reply do not change it.
    for whole in dict.fromkeys((words, without_courtesy(text))):
        for choice in question.choices:
            if whole in choice.match:
                return choice
    best: tuple[int, Choice] | None = None
    for choice in question.choices:
        if choice.exact:
            continue
        for phrase in choice.match:
            if phrase.isdigit() or not words.startswith(phrase + " "):
                continue
            rest = words[len(phrase) :].split()
            if _TURNS & set(rest) or rest[0] in _IDIOM_AFTER or _starts_with_any(rest, choice.not_before):
                continue
            if best is None or len(phrase) > best[0]:
                best = (len(phrase), choice)
    return best[1] if best else _number_first(question, text, strengtheners)


def _starts_with_any(words: list[str], phrases: tuple[str, ...]) -> bool:
    return any(words[: len(phrase.split())] == phrase.split() for phrase in phrases)


# A choice's number first, set apart from what follows by a mark ("2 - been ok", "3, rough one") or a
# space; not part of a time, a date, a range or a sum ("1.30", "2/3", "2-3" read on as "3").
_NUMBER_FIRST = re.compile(
    r"\s*(?P<number>\d{1,2})(?![\d:/.,]\d)(?P<gap>\s*[-\u2013\u2014.,:;)!]+\s*|\s+)(?P<rest>\S.*)", re.DOTALL
)


def _number_first(question: Question, text: str, strengtheners: frozenset[str]) -> Choice | None:
    """A choice's number with words after it: "3 not great tbh", "3 really struggling", "2 - been ok".

    The words must not pick another choice ("1 day was ok but the rest was awful" names two, and is
    free text), nor turn the number around outside a choice's own words ("1, but not really"). After a
    space alone the words must start with the same choice's, perhaps strengthened ("3 really bad"): a
    number followed by what it counts ("2 days were ok") is free text. After a mark ("2 - been an ok
    week") they need only not disagree.
    """
    found = _NUMBER_FIRST.match(text)
    if found is None:
        return None
    number = found.group("number")
    chosen = next((c for c in question.choices if not c.exact and number in c.match), None)
    if chosen is None:
        return None
    words = normalise(found.group("rest")).split()
    picked, covered = _choices_named(question, words)
    if picked - {chosen} or any(w in _TURNS for i, w in enumerate(words) if i not in covered):
        return None
    if not found.group("gap").isspace():
        return chosen
    first = next((i for i, word in enumerate(words) if word not in strengtheners), len(words))
    return chosen if first in covered else None


def _choices_named(question: Question, words: list[str]) -> tuple[set[Choice], set[int]]:
    """The choices whose words (or numbers) appear in `words`, longest first ("not bad" is not "bad"),
    and the positions those words cover."""
    spans: list[tuple[int, int, Choice]] = []
    for choice in question.choices:
        for phrase in choice.match:
            wanted = phrase.split()
            size = len(wanted)
            spans += [(i, i + size, choice) for i in range(len(words) - size + 1) if words[i : i + size] == wanted]
    spans.sort(key=lambda span: span[0] - span[1])  # the longest first
    picked: set[Choice] = set()
    covered: set[int] = set()
    for first, last, choice in spans:
        if covered.isdisjoint(range(first, last)):
            picked.add(choice)
            covered.update(range(first, last))
    return picked, covered
