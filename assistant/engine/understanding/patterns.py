"""Compiling the phrase files' pattern language into the slots a clause is matched against."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from assistant.engine.flow import FlowError
from assistant.engine.understanding.phrases import Pattern, Slot
from assistant.engine.understanding.words import COMMON, stem

_GAP = 3  # words a "..." in a pattern may skip
_LONG_GAP = 8  # and a "...." (for a context that sits further back in a sentence)
# Brackets are spelt out into one pattern per way through them, each matched on its own: a pattern
# of many bracketed choices becomes thousands (slow to start, slow to read every text).
MAX_VARIANTS = 1000
# Words of the writer's own self: a pattern saying one is never set aside as someone else's words.
# "ill" in a pattern is "I'll" (the patterns spell it beside "i will"); in a text it stays the word.
_SELF_WORDS = frozenset({"myself", "me", "my", "i", "mine", "meself", "ill"})
_GROUP = re.compile(r"\(([^()]*)\)(\?)?")
_PLAIN_WORD = re.compile(r"=?[a-z0-9]+\*?")


# Stems some words share with a function word: such a word in a pattern is matched as itself.
_FUNCTION_WORDS = frozenset({"not", "her"})


def _slot(token: str, classes: Mapping[str, Sequence[str]], source: str, aliases: Mapping[str, str]) -> Slot:
    optional = token.endswith("?") and len(token) > 1
    token = token.rstrip("?") if optional else token
    if token in ("...", "...."):
        return Slot(frozenset(), gap=_GAP if token == "..." else _LONG_GAP)
    if token == "$":
        return Slot(frozenset(), end=True)
    stems: set[str] = set()
    prefixes: list[str] = []
    exact: set[str] = set()
    or_end = False
    for part in token.split("|"):
        if part == "$":
            or_end = True
            continue
        if part.startswith("="):
            exact.add(part[1:])
            continue
        if part.startswith("@"):
            if part[1:] not in classes:
                raise FlowError(f"{source}: unknown word class {part!r}")
            words = list(classes[part[1:]])
        else:
            words = [part]
        for word in words:
            if not _PLAIN_WORD.fullmatch(word):
                raise FlowError(f"{source}: {word!r} is not a plain lower-case word (in {token!r})")
            if word.endswith("*"):
                prefixes.append(word[:-1])
            else:
                word = aliases.get(word, word)
                found = stem(word)  # "died" is read as "die" in texts too
                if found in _FUNCTION_WORDS and found != word:
                    exact.add(word)  # a "note" is not "not", "here" is not "her": the word itself
                else:
                    stems.add(found)
    return Slot(frozenset(stems), tuple(prefixes), frozenset(exact), optional=optional or or_end, or_end=or_end)


def _anchor_cost(slot: Slot) -> int:
    words = slot.stems | slot.exact
    return len(words) + 10 * len(slot.prefixes) + 100 * len(words & COMMON)


def _pattern(
    text: str,
    classes: Mapping[str, Sequence[str]],
    source: str,
    aliases: Mapping[str, str] | None = None,
    made: dict[str, Slot] | None = None,
) -> Pattern:
    """`made`: the slots already made from the same word classes and aliases, by their token (the
    phrase files spell out some 75,000 patterns from a few thousand distinct tokens)."""
    tokens = text.split()
    if not tokens:
        raise FlowError(f"{source}: an empty pattern")
    made = {} if made is None else made
    for token in tokens:
        if token not in made:
            made[token] = _slot(token, classes, f"{source}: pattern {text!r}", aliases or {})
    slots = tuple(made[token] for token in tokens)
    required = [s for s in slots if s.required]
    if not required:
        raise FlowError(f"{source}: pattern {text!r} has no word that must be there")
    if slots[0].gap or slots[-1].gap:
        raise FlowError(f"{source}: pattern {text!r} may not start or end with ...")
    # Anchor on the required slot that is rarest in ordinary text: the cheapest filter.
    anchor = min(required, key=_anchor_cost)
    words = {w.strip("?") for t in tokens for part in t.split("|") for w in [part.rstrip("?")]}
    expanded = set()
    for word in words:
        expanded |= set(classes.get(word[1:], [])) if word.startswith("@") else {word}
    return Pattern(
        source=text,
        slots=slots,
        anchors=anchor.stems | {stem(w) for w in anchor.exact},
        anchor_prefixes=anchor.prefixes,
        about_self=bool(expanded & _SELF_WORDS),
    )


# A group of single words, not inside another group: "(went|gone) home" reads as the slot "went|gone home".
_WORDS_GROUP = re.compile(r"\(([^()\s$]+)\)(\?)?")


def _as_slots(text: str) -> str:
    """Groups of single words become one slot each: one pattern, not one per way through them
    (a pattern with four such groups of five words would otherwise be 625 patterns to try)."""

    def slot(match: re.Match[str]) -> str:
        before = text[: match.start()]
        if before.count("(") != before.count(")"):
            return match.group(0)  # inside another group: "|" there separates that group's choices
        # A pattern saying "my" or "myself" is about the writer (never someone else's words): a
        # group mixing such words (or a class, which may hold them) with others stays spelled out.
        maybe_self = [o.lstrip("=") in _SELF_WORDS or o.startswith("@") for o in match.group(1).split("|")]
        if any(maybe_self) and not all(maybe_self):
            return match.group(0)
        return match.group(1) + (match.group(2) or "")

    return _WORDS_GROUP.sub(slot, text)


def _expand_groups(text: str, source: str) -> list[str]:
    """ "(be here|wake up) now" -> ["be here now", "wake up now"]: groups hold several words."""
    return list(dict.fromkeys(_expand_word_groups(_as_slots(text), source)))  # nested groups repeat ways


def _expand_word_groups(text: str, source: str) -> list[str]:
    match = _GROUP.search(text)
    if match is None:
        if "(" in text or ")" in text:
            raise FlowError(f"{source}: unbalanced brackets in pattern {text!r}")
        return [" ".join(text.split())]
    found: list[str] = []
    # "(really)?" may also be left out.
    for option in match.group(1).split("|") + ([""] if match.group(2) else []):
        found += _expand_word_groups(text[: match.start()] + f" {option} " + text[match.end() :], source)
    return found


def compile_patterns(
    texts: Iterable[str],
    classes: Mapping[str, Sequence[str]],
    source: str,
    aliases: Mapping[str, str],
    made: dict[str, Slot] | None = None,
) -> tuple[Pattern, ...]:
    """Every pattern the texts spell out (one per way through their groups), each named by its text.
    `made`: slots made before from the same classes and aliases, kept across calls (see `_pattern`)."""
    found: list[Pattern] = []
    made = {} if made is None else made
    for text in texts:
        variants = _expand_groups(str(text), source)
        if len(variants) > MAX_VARIANTS:
            raise FlowError(
                f"{source}: pattern {text!r} spells out {len(variants)} patterns (at most {MAX_VARIANTS}): "
                'write single-word choices as one slot ("went|gone|left"), not in brackets'
            )
        for variant in variants:
            pattern = _pattern(variant, classes, source, aliases, made)
            found.append(
                Pattern(str(text), pattern.slots, pattern.anchors, pattern.anchor_prefixes, pattern.about_self)
            )
    return tuple(found)


def literal_words(pattern_text: str, classes: Mapping[str, Sequence[str]]) -> set[str]:
    """The whole words a pattern names, its word classes' included (for spelling correction)."""
    found: set[str] = set()
    for token in pattern_text.replace("(", " ").replace(")", " ").split():
        for part in token.rstrip("?").split("|"):
            if part.startswith("@"):
                found |= {w for w in classes.get(part[1:], []) if not w.endswith("*")}
            elif part not in ("...", "$") and not part.endswith("*"):
                found.add(part)
    return found
