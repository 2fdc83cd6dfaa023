"""Cutting a text into clauses of tokens: text-speak, misspellings and word forms read as the patterns' words."""

from __future__ import annotations

import re
from functools import lru_cache

from assistant.engine.understanding.phrases import Phrases, Token
from assistant.engine.understanding.words import (
    MIN_FUZZY,
    NOT_WORD,
    VARIATION,
    deletes,
    fuzzy_depth,
    osa_distance,
    simplify,
    skeleton,
    stem,
)

_CLAUSE_MARKS = re.compile(r"[.!?;,:\n()\[\]]+")
_HELD_LETTERS = re.compile(r"([a-z])\1{2,}")


def _correct(phrases: Phrases, word: str) -> str:
    return _correct_cached(phrases, word)


@lru_cache(maxsize=20000)
def _correct_cached(phrases: Phrases, word: str) -> str:
    """The pattern word a misspelt word most likely is, or the word itself."""
    if word in phrases.vocabulary or word in phrases.expand or not word.isalpha():
        return word
    # Letters held down or doubled by mistake: "pleeease", "diee", "killl".
    single = re.sub(r"([a-z])\1+", r"\1", word)
    for candidate in {single, re.sub(r"([a-z])\1+", r"\1\1", word)}:
        if candidate in phrases.vocabulary or candidate in phrases.expand:
            return candidate
    # A form of a word the patterns know ("topping" of "top") is not a misspelling of another.
    if len(word) < MIN_FUZZY or stem(word) in phrases.stems:
        return word
    best = _nearest_known(phrases, word)
    if best:
        return best
    if len(word) >= 6 and word not in phrases.protected:
        return phrases.sounds_like.get(skeleton(word), word)
    return word


def _nearest_known(phrases: Phrases, word: str) -> str | None:
    """The known word within a letter or two of `word` (two for long words), if there is one."""
    depth = fuzzy_depth(word)
    # Nearest first; among equals the longer word (texts drop letters more than they add them:
    # "longr" is "longer", not "long"), then the first in order, so the choice never varies.
    best: tuple[int, int, str] | None = None
    for variant in deletes(word, depth):
        for known in phrases._deletes.get(variant, ()):
            # People rarely get the first letter wrong: requiring it keeps real words from
            # being "corrected" into the patterns' words.
            if known in phrases.protected or known[0] != word[0] or abs(len(known) - len(word)) > depth:
                continue
            limit = fuzzy_depth(known) if len(known) >= MIN_FUZZY else 1
            distance = osa_distance(word, known, min(depth, limit))
            if distance <= min(depth, limit) and (best is None or (distance, -len(known), known) < best):
                best = (distance, -len(known), known)
    return best[2] if best else None


def _tokens(phrases: Phrases, clause: str) -> list[Token]:
    tokens: list[Token] = []
    for raw in clause.split():
        # A count of ten or more reads as "lots" ("took 16 paracetamol"); years stay years. The
        # digits stay its word, so a pattern can still ask for them ("when i was 1*").
        if raw.isdigit() and 10 <= int(raw) < 1000:
            tokens.append(Token(stem("lots"), raw, raw))
            continue
        word = _correct(phrases, _HELD_LETTERS.sub(r"\1\1", raw))
        for part in phrases.expand.get(word, (word,)):
            tokens.append(Token(stem(part), part, raw, filler=part in phrases.fillers))
    return tokens


def clauses_of(phrases: Phrases, text: str) -> list[list[Token]]:
    """The text's clauses, cut at punctuation and at the words that turn a sentence ("but")."""
    clauses: list[list[Token]] = []
    if phrases.emoji:
        text = text.replace(VARIATION, "")
        for symbol, words in phrases.emoji:
            text = text.replace(symbol, f" {words} ")
    pieces = [
        " ".join(NOT_WORD.sub(" ", p.replace("-", " ").replace("/", " ")).split())
        for p in _CLAUSE_MARKS.split(simplify(text))
    ]
    for piece in _one_word_runs_joined(pieces):
        piece = phrases.rewrite.apply(piece)
        current: list[Token] = []
        for token in _tokens(phrases, piece):
            if token.word in phrases.clause_breaks:
                if current:
                    clauses.append(current)
                current = []
            else:
                current.append(token)
        if current:
            clauses.append(current)
    return clauses


# Three or more one-word pieces in a row are one sentence written a word at a time ("I. Keep.
# Thinking. About. Dying."): read together, or no pattern ever sees its words side by side.
WORD_AT_A_TIME = 3


def _one_word_runs_joined(pieces: list[str]) -> list[str]:
    joined: list[str] = []
    run: list[str] = []
    for piece in [*pieces, ""]:
        if piece and " " not in piece:
            run.append(piece)
            continue
        joined += [" ".join(run)] if len(run) >= WORD_AT_A_TIME else run
        run = []
        joined.append(piece)
    return joined
