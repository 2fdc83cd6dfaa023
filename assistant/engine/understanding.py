"""Reading one inbound text: every signal in it, and the words that triggered each.

Pure: the phrase knowledge arrives as data (phrases/<locale>/*.toml, compiled here
by `compile_phrases`), the text and the waiting question arrive as arguments.

How a text is read:
1. Normalised the way people text: case, accents, apostrophes, punctuation, letters
   held down ("dieeee"), text-speak and abbreviations ("kms", "wanna", "u"),
   misspellings of the words the patterns use (edit distance on longer words), and
   word forms ("harming", "harmed" and "harm" share one stem).
2. Cut into clauses at punctuation and at words that turn a sentence ("but").
3. Every pattern of every signal is tried on every clause. A pattern is a sequence of
   words, alternatives (a|b), word classes (@self), optional words (word?), gaps
   (... up to three words) and clause ends ($).
4. A match may be held back by its clause's context: negation just before it ("not
   suicidal"), another person as the subject ("my mum took an overdose"), the past
   ("used to ... years ago", unless something says it is back), or a benign idiom
   overlapping it ("cut myself shaving"). For risk the phrase files hold back only
   what the labelled corpus shows to be safe: when in doubt, it is a signal.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from assistant.engine.flow import Choice, FlowError, Question
from assistant.engine.text import keyword, normalise

SIGNALS = (
    "risk",
    "opt_out",
    "opt_in",
    "help",
    "call",
    "cancel",
    "rebook",
    "stop",
    "pause",
    "wrong_person",
    "new_number",
    "less",
    "more",
    "contact_time",
)
_GAP = 3  # words a "..." in a pattern may skip
_LONG_GAP = 8  # and a "...." (for a context that sits further back in a sentence)
_MIN_FUZZY = 5  # words shorter than this are only read through the text-speak list


# ---------------------------------------------------------------------------- words


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


def _osa_distance(a: str, b: str, limit: int) -> int:
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


def _deletes(word: str, depth: int) -> set[str]:
    found = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        found |= frontier
    return found


def _fuzzy_depth(word: str) -> int:
    return 2 if len(word) >= 8 else 1


# ---------------------------------------------------------------------------- patterns


@dataclass(frozen=True)
class _Slot:
    """One position of a pattern: the stems (or stem prefixes) it accepts."""

    stems: frozenset[str]
    prefixes: tuple[str, ...] = ()
    exact: frozenset[str] = frozenset()  # "=word": this form only, not its stem
    optional: bool = False
    gap: int = 0  # how many words this slot may skip (a "..." or "....")
    end: bool = False
    or_end: bool = False  # "a|$": the word, or the end of the clause

    def accepts(self, token: _Token) -> bool:
        return (
            token.stem in self.stems or token.word in self.exact or any(token.word.startswith(p) for p in self.prefixes)
        )


@dataclass(frozen=True)
class Pattern:
    source: str
    slots: tuple[_Slot, ...]
    # Stems of which at least one must be in a clause for the pattern to be tried.
    anchors: frozenset[str]
    anchor_prefixes: tuple[str, ...]
    # The pattern itself says who it is about ("myself", "my life"): no other-person hold-back.
    about_self: bool

    def could_match(self, tokens: Sequence[_Token]) -> bool:
        """Cheap test first: the pattern's rarest word is somewhere in the clause."""
        if self.anchor_prefixes and any(t.word.startswith(self.anchor_prefixes) for t in tokens):
            return True
        return any(t.stem in self.anchors for t in tokens)


@dataclass(frozen=True)
class Family:
    signal: str
    name: str
    label: str
    patterns: tuple[Pattern, ...]


@dataclass(frozen=True)
class HoldBack:
    """The contexts in which a match of one signal is set aside, as data."""

    negators: frozenset[str] = frozenset()
    negation_reach: int = 3
    # Words that may stand between a denial and what it denies ("not had ANY THOUGHTS OF
    # suicide"); any other word ends the denial's reach ("can't sleep and I want to die").
    negation_fillers: frozenset[str] = frozenset()
    others: frozenset[str] = frozenset()
    past: tuple[Pattern, ...] = ()
    recurrence: tuple[Pattern, ...] = ()
    recurrence_here: tuple[Pattern, ...] = ()
    # Said anywhere in the text, these put what came before in the past ("that was years ago").
    past_anywhere: tuple[Pattern, ...] = ()
    benign: tuple[Pattern, ...] = ()


@dataclass(frozen=True, eq=False)
class Phrases:
    """Everything compiled from one locale's phrase files."""

    locale: str
    families: tuple[Family, ...]
    hold_back: Mapping[str, HoldBack]
    # A signal that stands in for others when both are read ("stop ... for a couple of weeks" is a pause).
    suppresses: Mapping[str, frozenset[str]]
    keywords: Mapping[str, frozenset[str]]
    expand: Mapping[str, tuple[str, ...]]
    rewrite: tuple[tuple[re.Pattern[str], str], ...]
    clause_breaks: frozenset[str]
    vocabulary: frozenset[str]
    stems: frozenset[str]
    protected: frozenset[str]
    intensifiers: frozenset[str]
    sounds_like: Mapping[str, str] = field(default_factory=dict)
    model: RiskModel | None = None
    _flat: Sequence[tuple[Family, Pattern]] = ()
    _deletes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    _by_anchor: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    _prefix_patterns: tuple[int, ...] = ()

    def signals(self) -> set[str]:
        return {f.signal for f in self.families} | set(self.keywords)


_SELF_WORDS = frozenset({"myself", "me", "my", "i", "mine", "meself"})


def _slot(token: str, classes: Mapping[str, Sequence[str]], source: str, aliases: Mapping[str, str]) -> _Slot:
    optional = token.endswith("?") and len(token) > 1
    token = token.rstrip("?") if optional else token
    if token in ("...", "...."):
        return _Slot(frozenset(), gap=_GAP if token == "..." else _LONG_GAP)
    if token == "$":
        return _Slot(frozenset(), end=True)
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
            if not re.fullmatch(r"=?[a-z0-9]+\*?", word):
                raise FlowError(f"{source}: {word!r} is not a plain lower-case word (in {token!r})")
            if word.endswith("*"):
                prefixes.append(word[:-1])
            else:
                stems.add(stem(aliases.get(word, word)))  # "died" is read as "die" in texts too
    return _Slot(frozenset(stems), tuple(prefixes), frozenset(exact), optional=optional or or_end, or_end=or_end)


# Words so common that a pattern anchored on them would be tried on almost every text.
_COMMON = frozenset(
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


def _anchor_cost(slot: _Slot) -> int:
    words = slot.stems | slot.exact
    return len(words) + 10 * len(slot.prefixes) + 100 * len(words & _COMMON)


def _pattern(
    text: str, classes: Mapping[str, Sequence[str]], source: str, aliases: Mapping[str, str] | None = None
) -> Pattern:
    tokens = text.split()
    if not tokens:
        raise FlowError(f"{source}: an empty pattern")
    slots = tuple(_slot(t, classes, f"{source}: pattern {text!r}", aliases or {}) for t in tokens)
    required = [s for s in slots if not (s.optional or s.gap or s.end)]
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


_GROUP = re.compile(r"\(([^()]*)\)(\?)?")


def _expand_groups(text: str, source: str) -> list[str]:
    """ "(be here|wake up) now" -> ["be here now", "wake up now"]: groups hold several words."""
    match = _GROUP.search(text)
    if match is None:
        if "(" in text or ")" in text:
            raise FlowError(f"{source}: unbalanced brackets in pattern {text!r}")
        return [" ".join(text.split())]
    found: list[str] = []
    # "(really)?" may also be left out.
    for option in match.group(1).split("|") + ([""] if match.group(2) else []):
        found += _expand_groups(text[: match.start()] + f" {option} " + text[match.end() :], source)
    return found


def _patterns(
    texts: Iterable[str], classes: Mapping[str, Sequence[str]], source: str, aliases: Mapping[str, str]
) -> tuple[Pattern, ...]:
    found: list[Pattern] = []
    for text in texts:
        for variant in _expand_groups(str(text), source):
            pattern = _pattern(variant, classes, source, aliases)
            found.append(
                Pattern(str(text), pattern.slots, pattern.anchors, pattern.anchor_prefixes, pattern.about_self)
            )
    return tuple(found)


def _literal_words(pattern_text: str, classes: Mapping[str, Sequence[str]]) -> set[str]:
    found: set[str] = set()
    for token in pattern_text.split():
        for part in token.rstrip("?").split("|"):
            if part.startswith("@"):
                found |= {w for w in classes.get(part[1:], []) if not w.endswith("*")}
            elif part not in ("...", "$") and not part.endswith("*"):
                found.add(part)
    return found


def compile_phrases(
    files: Mapping[str, Mapping[str, Any]],
    *,
    locale: str,
    training: tuple[Sequence[str], Sequence[str]] | None = None,
    threshold: float = 0.0,
) -> Phrases:
    """Build a locale's phrase knowledge from its parsed files (file name -> TOML data).

    Every family's `examples` must be read as that signal and every `not_examples`
    must not be: a phrase file that contradicts itself fails here, naming the file.
    """
    classes: dict[str, list[str]] = {}
    expand: dict[str, tuple[str, ...]] = {}
    rewrites: dict[str, str] = {}
    clause_breaks: set[str] = set()
    protected: set[str] = set()
    intensifiers: set[str] = set()
    keywords: dict[str, frozenset[str]] = {}
    sounds_like: dict[str, str] = {}
    for name, data in files.items():
        sounds_like |= {str(k): str(v) for k, v in data.get("sounds_like", {}).items()}
        for key, words in data.get("classes", {}).items():
            classes.setdefault(key, []).extend(str(w) for w in words)
        for key, value in data.get("expand", {}).items():
            expand[str(key)] = tuple(str(value).split())
        for key, value in data.get("rewrite", {}).items():
            rewrites[str(key)] = str(value)
        clause_breaks |= set(data.get("clause_breaks", []))
        protected |= set(data.get("protected", []))
        intensifiers |= set(data.get("intensifiers", []))
        for key, words in data.get("keywords", {}).items():
            if key not in SIGNALS:
                raise FlowError(f"{name}: unknown keyword signal {key!r}")
            keywords[key] = frozenset(str(w) for w in words)

    # A word the text-speak list turns into another single word is read as that word in patterns too.
    aliases = {word: words[0] for word, words in expand.items() if len(words) == 1}
    families: list[Family] = []
    hold_back: dict[str, HoldBack] = {}
    suppresses: dict[str, frozenset[str]] = {}
    vocabulary: set[str] = set(protected)
    checks: list[tuple[str, str, str, bool]] = []
    for name, data in files.items():
        signal = data.get("signal")
        if signal is None:
            continue
        if signal not in SIGNALS:
            raise FlowError(f"{name}: unknown signal {signal!r}")
        if not set(data.get("suppresses", [])) <= set(SIGNALS) - {"risk"}:
            raise FlowError(f"{name}: suppresses must name signals other than risk")
        suppresses[signal] = frozenset(data.get("suppresses", []))
        for family_name, family in data.get("families", {}).items():
            source = f"{name}: families.{family_name}"
            texts = [str(p) for p in family.get("patterns", [])]
            if not texts:
                raise FlowError(f"{source}: no patterns")
            patterns = _patterns(texts, classes, source, aliases)
            for text in texts:
                vocabulary |= _literal_words(text.replace("(", " ").replace(")", " "), classes)
            families.append(Family(signal, family_name, str(family.get("label", family_name)), patterns))
            checks += [(source, signal, str(e), True) for e in family.get("examples", [])]
            checks += [(source, signal, str(e), False) for e in family.get("not_examples", [])]
        hb = data.get("hold_back", {})
        source = f"{name}: hold_back"
        hold_back[signal] = HoldBack(
            negators=frozenset(stem(w) for w in hb.get("negators", [])),
            negation_reach=int(hb.get("negation_reach", 3)),
            others=frozenset(stem(w) for w in hb.get("others", [])),
            past=_patterns(hb.get("past", []), classes, source, aliases),
            recurrence=_patterns(hb.get("recurrence", []), classes, source, aliases),
            recurrence_here=_patterns(hb.get("recurrence_here", []), classes, source, aliases),
            past_anywhere=_patterns(hb.get("past_anywhere", []), classes, source, aliases),
            negation_fillers=frozenset(stem(w) for w in hb.get("negation_fillers", [])),
            benign=_patterns(hb.get("benign", []), classes, source, aliases),
        )
        for p in [
            *hb.get("past", []),
            *hb.get("recurrence", []),
            *hb.get("recurrence_here", []),
            *hb.get("past_anywhere", []),
            *hb.get("benign", []),
        ]:
            vocabulary |= _literal_words(str(p).replace("(", " ").replace(")", " "), classes)
        checks += [(source, signal, str(e), False) for e in hb.get("examples", [])]
    for words in expand.values():
        vocabulary |= set(words)
    for words_set in keywords.values():
        for phrase in words_set:
            vocabulary |= set(phrase.split())
    vocabulary |= set(expand) | clause_breaks | intensifiers

    deletes: dict[str, set[str]] = {}
    for word in vocabulary:
        if len(word) >= _MIN_FUZZY - 1 and word.isalpha():
            for variant in _deletes(word, _fuzzy_depth(word)):
                deletes.setdefault(variant, set()).add(word)

    by_anchor: dict[str, list[int]] = {}
    prefix_patterns: list[int] = []
    flat = [p for f in families for p in f.patterns]
    for index, pattern in enumerate(flat):
        for anchor in pattern.anchors:
            by_anchor.setdefault(anchor, []).append(index)
        if pattern.anchor_prefixes:
            prefix_patterns.append(index)

    rewrite = tuple(
        (re.compile(r"\b" + re.escape(k) + r"\b"), v) for k, v in sorted(rewrites.items(), key=lambda kv: -len(kv[0]))
    )
    phrases = Phrases(
        locale=locale,
        families=tuple(families),
        hold_back=hold_back,
        suppresses=suppresses,
        keywords=keywords,
        expand=expand,
        rewrite=rewrite,
        clause_breaks=frozenset(clause_breaks),
        vocabulary=frozenset(vocabulary),
        stems=frozenset(stem(w) for w in vocabulary),
        protected=frozenset(protected),
        intensifiers=frozenset(intensifiers),
        sounds_like=sounds_like,
        _deletes={k: tuple(sorted(v)) for k, v in deletes.items()},
        _by_anchor={k: tuple(v) for k, v in by_anchor.items()},
        _prefix_patterns=tuple(prefix_patterns),
        _flat=tuple((f, p) for f in families for p in f.patterns),
    )
    failures = []
    for source, signal, example, expected in checks:
        found = any(s.kind == signal for s in read(example, phrases).signals)
        if found != expected:
            verb = "is not read as" if expected else "is read as"
            failures.append(f"{source}: example {example!r} {verb} {signal!r}")
    if failures:
        raise FlowError("\n".join(failures))
    if training is not None:
        risk, ordinary = training
        phrases = replace(phrases, model=train_risk_model(phrases, risk, ordinary, threshold=threshold))
    return phrases


# ---------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Signal:
    """One thing a text says, and the participant's own words that showed it."""

    kind: str
    family: str
    label: str
    words: str


@dataclass(frozen=True)
class HeldBack:
    """A match set aside by its context, kept so a reviewer can see why."""

    kind: str
    family: str
    words: str
    because: str


@dataclass(frozen=True)
class Reading:
    text: str
    signals: tuple[Signal, ...]
    held_back: tuple[HeldBack, ...] = ()
    answer: Choice | None = None
    keyword: str | None = None

    def has(self, kind: str) -> bool:
        return any(s.kind == kind for s in self.signals)

    def first(self, kind: str) -> Signal | None:
        return next((s for s in self.signals if s.kind == kind), None)

    def kinds(self) -> list[str]:
        return list(dict.fromkeys(s.kind for s in self.signals))

    def words(self, kind: str) -> list[str]:
        return list(dict.fromkeys(s.words for s in self.signals if s.kind == kind))


@dataclass(frozen=True)
class _Token:
    stem: str
    word: str  # the normalised word
    raw: str  # the participant's word it came from


_CLAUSE_MARKS = re.compile(r"[.!?;,:\n()\[\]]+")
_NOT_WORD = re.compile(r"[^a-z0-9 ]+")
_HELD_LETTERS = re.compile(r"([a-z])\1{2,}")


_LEET = {"1": "i", "!": "i", "3": "e", "0": "o", "4": "a", "@": "a", "$": "s", "5": "s", "*": "i", "|": "i"}
_IN_WORD = re.compile(r"(?<=[a-z])[1!30@$5*|4]+(?=[a-z])")
_SPELT_OUT = re.compile(r"\b(?:[a-z] ){3,}[a-z]\b")


def simplify(text: str) -> str:
    """Lower case, plain letters, no apostrophes: "Don’t" -> "dont", "café" -> "cafe", "su1c1de" ->
    "suicide", "k*ll" -> "kill", "s u i c i d e" -> "suicide"."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"[\u2018\u2019\u02bc`']", "", text)
    text = _IN_WORD.sub(lambda m: "".join(_LEET[c] for c in m.group(0)), text)
    text = _SPELT_OUT.sub(lambda m: m.group(0).replace(" ", ""), text)
    return text.replace("&", " and ")


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
    if len(word) < _MIN_FUZZY or stem(word) in phrases.stems:
        return word
    depth = _fuzzy_depth(word)
    # Nearest first; among equals the longer word (texts drop letters more than they add them:
    # "longr" is "longer", not "long"), then the first in order, so the choice never varies.
    best: tuple[int, int, str] | None = None
    for variant in _deletes(word, depth):
        for known in phrases._deletes.get(variant, ()):
            # People rarely get the first letter wrong: requiring it keeps real words from
            # being "corrected" into the patterns' words.
            if known in phrases.protected or known[0] != word[0] or abs(len(known) - len(word)) > depth:
                continue
            limit = _fuzzy_depth(known) if len(known) >= _MIN_FUZZY else 1
            distance = _osa_distance(word, known, min(depth, limit))
            if distance <= min(depth, limit) and (best is None or (distance, -len(known), known) < best):
                best = (distance, -len(known), known)
    if best:
        return best[2]
    if len(word) >= 6 and word not in phrases.protected:
        return phrases.sounds_like.get(_skeleton(word), word)
    return word


def _skeleton(word: str) -> str:
    """Consonants only, runs of one letter as one: "sooisidal" -> "ssdl", "suicide" -> "scd"."""
    consonants = [c for c in word[1:] if c not in "aeiouy"]
    return re.sub(r"(.)\1+", r"\1", word[0].replace("y", "") + "".join(consonants)) if word else word


def _tokens(phrases: Phrases, clause: str) -> list[_Token]:
    tokens: list[_Token] = []
    for raw in clause.split():
        # A count of ten or more reads as "lots" ("took 16 paracetamol"); years stay years.
        word = "lots" if raw.isdigit() and 10 <= int(raw) < 1000 else _HELD_LETTERS.sub(r"\1\1", raw)
        word = _correct(phrases, word)
        for part in phrases.expand.get(word, (word,)):
            tokens.append(_Token(stem(part), part, raw))
    return tokens


def _clauses(phrases: Phrases, text: str) -> list[list[_Token]]:
    clauses: list[list[_Token]] = []
    for piece in _CLAUSE_MARKS.split(simplify(text)):
        piece = " ".join(_NOT_WORD.sub(" ", piece.replace("-", " ").replace("/", " ")).split())
        for pattern, replacement in phrases.rewrite:
            piece = pattern.sub(replacement, piece)
        current: list[_Token] = []
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


_Match = tuple[int, int, frozenset[int]]  # start, end, and the positions the pattern's words took


def _match_at(slots: Sequence[_Slot], tokens: Sequence[_Token], i: int, j: int, used: tuple[int, ...]) -> _Match | None:
    """A match of slots[j:] starting at tokens[i], or None."""
    if j == len(slots):
        return (used[0] if used else i), i, frozenset(used)
    slot = slots[j]
    if slot.end:
        return _match_at(slots, tokens, i, j + 1, used) if i == len(tokens) else None
    if slot.gap:
        for skip in range(slot.gap + 1):
            if i + skip > len(tokens):
                break
            found = _match_at(slots, tokens, i + skip, j + 1, used)
            if found:
                return found
        return None
    if i < len(tokens) and slot.accepts(tokens[i]):
        found = _match_at(slots, tokens, i + 1, j + 1, (*used, i))
        if found:
            return found
    if slot.or_end:
        return _match_at(slots, tokens, i, j + 1, used) if i == len(tokens) else None
    if slot.optional:
        return _match_at(slots, tokens, i, j + 1, used)
    return None


def _find(pattern: Pattern, tokens: Sequence[_Token]) -> _Match | None:
    for start in range(len(tokens)):
        if not pattern.slots[0].optional and not pattern.slots[0].accepts(tokens[start]):
            continue
        found = _match_at(pattern.slots, tokens, start, 0, ())
        if found and found[1] > found[0]:
            return found
    return None


def _found_anywhere(patterns: Iterable[Pattern], clauses: Sequence[Sequence[_Token]]) -> bool:
    return any(_find_any(patterns, c) for c in clauses)


def _why_held(
    hold: HoldBack,
    pattern: Pattern,
    tokens: Sequence[_Token],
    span: _Match,
    clauses: Sequence[Sequence[_Token]],
) -> str | None:
    start, end, used = span
    if hold.negators and _denied(hold, tokens, start, end, used):
        return "negated"
    for benign in hold.benign:
        found = _find(benign, tokens) if benign.could_match(tokens) else None
        if found and found[0] < end and start < found[1]:
            return "idiom"
    if hold.others and not pattern.about_self:
        # Someone else as the subject: among the first words of the clause ("my mum took ...").
        subject = [t for t in tokens[: min(start, 3)] if t.stem in hold.others]
        if subject and not any(t.word in ("i", "me", "myself") for t in tokens[:end]):
            return "someone else"
    if _found_anywhere(hold.recurrence, clauses) or _find_any(hold.recurrence_here, tokens):
        return None
    if hold.past and _find_any(hold.past, tokens):
        return "in the past"
    if hold.past_anywhere and _found_anywhere(hold.past_anywhere, clauses):
        return "in the past"
    return None


def _denied(hold: HoldBack, tokens: Sequence[_Token], start: int, end: int, used: frozenset[int]) -> bool:
    """A denial before the words, or inside them where the pattern skipped a word ("not feeling
    hopeless"), with only filler words between it and the words it denies."""
    for k in range(start, end):
        if k not in used and tokens[k].stem in hold.negators:
            return True
    k = start - 1
    while k >= 0 and start - k <= hold.negation_reach:
        stem_k = tokens[k].stem
        if stem_k in hold.negators:
            return True
        if hold.negation_fillers and stem_k not in hold.negation_fillers:
            return False
        k -= 1
    return False


def _find_any(patterns: Iterable[Pattern], tokens: Sequence[_Token]) -> bool:
    return any(p.could_match(tokens) and _find(p, tokens) for p in patterns)


def read(text: str, phrases: Phrases, question: Question | None = None) -> Reading:
    """Every signal in one text, with the words behind it, and the answer to `question`."""
    clauses = _clauses(phrases, text)
    flat_patterns = phrases._flat
    signals: list[Signal] = []
    held: list[HeldBack] = []
    seen: set[tuple[str, str]] = set()
    for tokens in clauses:
        candidates: set[int] = set()
        for token in tokens:
            candidates.update(phrases._by_anchor.get(token.stem, ()))
        for index in phrases._prefix_patterns:
            prefixes = flat_patterns[index][1].anchor_prefixes
            if any(t.word.startswith(prefixes) for t in tokens):
                candidates.add(index)
        for index in sorted(candidates):
            family, pattern = flat_patterns[index]
            span = _find(pattern, tokens)
            if span is None:
                continue
            words = _raw_words(tokens, span[:2])
            if (family.signal, words) in seen:
                continue
            seen.add((family.signal, words))
            hold = phrases.hold_back.get(family.signal)
            because = _why_held(hold, pattern, tokens, span, clauses) if hold else None
            if because:
                held.append(HeldBack(family.signal, family.name, words, because))
            else:
                signals.append(Signal(family.signal, family.name, family.label, words))
    answer = answer_to(phrases, question, text, {s.kind for s in signals}) if question else None
    # A reply that is wholly one of the question's own answers ("nearly every day") is an
    # answer, not free text: only the phrase rules read it.
    whole_answer = answer is not None and normalise(text) in answer.match
    if phrases.model is not None and not whole_answer and not any(s.kind == "risk" for s in signals):
        score, reasons = phrases.model.score(_features(clauses))
        # Where a phrase rule has already set risk words aside (someone else, the past, a
        # denial) or the text holds a known harmless idiom, the classifier needs more to overrule it.
        risk_hold = phrases.hold_back.get("risk")
        set_aside = any(h.kind == "risk" for h in held) or (
            risk_hold is not None and _found_anywhere(risk_hold.benign, clauses)
        )
        margin = phrases.model.held_back_margin if set_aside else 0.0
        if score > phrases.model.threshold + margin:
            words = ", ".join(dict.fromkeys(_their_words(feature, clauses) for feature in reasons))
            signals.append(Signal("risk", "classifier", "reads like texts that were risk", words))
    keyword = _keyword(phrases, text)
    if keyword and not any(s.kind == keyword for s in signals):
        signals.insert(0, Signal(keyword, "keyword", keyword, text.strip()))
    # A risk match anywhere outranks a hold-back of the same words elsewhere: keep signals only once.
    signals = _dedupe(signals)
    present = {s.kind for s in signals}
    dropped = {kind for signal in present for kind in phrases.suppresses.get(signal, frozenset())}
    signals = [s for s in signals if s.kind not in dropped]
    return Reading(text=text, signals=tuple(signals), held_back=tuple(held), answer=answer, keyword=keyword)


def _raw_words(tokens: Sequence[_Token], span: tuple[int, int]) -> str:
    return " ".join(dict.fromkeys(t.raw for t in tokens[span[0] : span[1]]))


def _dedupe(signals: list[Signal]) -> list[Signal]:
    kept: list[Signal] = []
    for signal in signals:
        if any(k.kind == signal.kind and signal.words in k.words for k in kept):
            continue
        kept = [k for k in kept if not (k.kind == signal.kind and k.words in signal.words)]
        kept.append(signal)
    return kept


def _keyword(phrases: Phrases, text: str) -> str | None:
    """A whole message that is one of the carrier's keywords, or one of the service's."""
    carrier = keyword(text)
    if carrier is not None:
        return carrier
    words = " ".join(_NOT_WORD.sub(" ", simplify(text)).split())
    for kind, choices in phrases.keywords.items():
        if words in choices:
            return kind
    return None


def answer_to(phrases: Phrases, question: Question, text: str, signals: set[str] | None = None) -> Choice | None:
    """The choice a reply picks: its words ("well bad" is bad: "well" only intensifies),
    else a signal a choice stands for (a cancellation answers a reminder's NO)."""
    from assistant.engine.runner import match_choice

    choice = match_choice(question, text)
    words = simplify(text).split()
    if choice is None and len(words) > 1 and _NOT_WORD.sub("", words[0]) in phrases.intensifiers:
        choice = match_choice(question, " ".join(words[1:]))
    elif choice is not None and len(words) > 1 and _NOT_WORD.sub("", words[0]) in phrases.intensifiers:
        rest = match_choice(question, " ".join(words[1:]))
        if rest is not None:
            choice = rest
    if choice is None and signals:
        choice = next((c for c in question.choices if set(c.signals) & signals), None)
    return choice


# ---------------------------------------------------------------------------- the classifier


@dataclass(frozen=True, eq=False)
class RiskModel:
    """Naive Bayes over the words and word pairs of labelled texts, for the phrasings no
    pattern names. Trained when the phrases load (a few thousand texts, well under a
    second), so the training texts are content a clinician can read and extend.

    It only ever adds risk signals, never removes one: recall first. It says why it fired:
    the words that weighed most towards risk."""

    weights: Mapping[str, float]  # log P(feature | risk) - log P(feature | ordinary)
    bias: float
    threshold: float  # log-odds above which a text is read as risk
    held_back_margin: float = 2.0

    def score(self, features: Iterable[str]) -> tuple[float, list[str]]:
        total = self.bias
        reasons: list[tuple[float, str]] = []
        for feature in set(features):
            weight = self.weights.get(feature)
            if weight is not None:
                total += weight
                if weight > 0:
                    reasons.append((weight, feature))
        reasons.sort(reverse=True)
        return total, [f for _, f in reasons[:3]]


def _their_words(feature: str, clauses: Sequence[Sequence[_Token]]) -> str:
    """The participant's own words behind a feature ("anymor" -> "any more", "end_it" -> "end it")."""
    parts = feature.split("_")
    for tokens in clauses:
        for start in range(len(tokens) - len(parts) + 1):
            if all(tokens[start + k].stem == part for k, part in enumerate(parts)):
                return " ".join(dict.fromkeys(t.raw for t in tokens[start : start + len(parts)]))
    return feature.replace("_", " ")


def _features(clauses: Sequence[Sequence[_Token]]) -> list[str]:
    """Words (leaving out the commonest, which say nothing alone) and pairs of neighbouring words."""
    found: list[str] = []
    for tokens in clauses:
        stems = [t.stem for t in tokens]
        found += [s for s in stems if s not in _COMMON]
        found += [f"{a}_{b}" for a, b in itertools.pairwise(stems) if not (a in _COMMON and b in _COMMON)]
    return found


def train_risk_model(
    phrases: Phrases,
    risk: Sequence[str],
    ordinary: Sequence[str],
    *,
    threshold: float = 0.0,
    epochs: int = 30,
    l2: float = 1e-2,
    min_count: int = 2,
) -> RiskModel:
    """Logistic regression on word and word-pair features, by stochastic gradient descent.

    Deterministic (fixed order, no randomness), so the same texts always give the same model."""
    rows = [(set(_features(_clauses(phrases, t))), 1.0) for t in risk]
    rows += [(set(_features(_clauses(phrases, t))), 0.0) for t in ordinary]
    seen: dict[str, int] = {}
    for features, _label in rows:
        for f in features:
            seen[f] = seen.get(f, 0) + 1
    # A feature seen in one text only is that text, not a way of speaking: left out.
    rows = [({f for f in features if seen[f] >= min_count}, label) for features, label in rows]
    # Interleave the two labels so each pass sees them evenly, in a fixed order.
    rows.sort(key=lambda row: (hash_text(sorted(row[0])), row[1]))
    weights: dict[str, float] = {}
    bias = 0.0
    for epoch in range(epochs):
        rate = 0.5 / (1 + epoch)
        for features, label in rows:
            z = bias + sum(weights.get(f, 0.0) for f in features)
            predicted = 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))
            error = label - predicted
            bias += rate * error
            for f in features:
                w = weights.get(f, 0.0)
                weights[f] = w + rate * (error - l2 * w)
    return RiskModel(weights={f: w for f, w in weights.items() if abs(w) > 1e-4}, bias=bias, threshold=threshold)


def hash_text(parts: Sequence[str]) -> int:
    """A stable hash (Python's own is salted per process)."""
    value = 0
    for part in parts:
        for char in part:
            value = (value * 131 + ord(char)) % 2_147_483_647
    return value
