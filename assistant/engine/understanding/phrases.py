"""The compiled phrase knowledge of one locale: patterns and their slots, families, hold-backs."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assistant.engine.understanding.classifier import RiskModel
    from assistant.engine.understanding.numbered import NumberedAnswers

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


@dataclass(frozen=True)
class Rewrites:
    """Runs of words read as others ("i odd" as "i overdosed"), longest first, each on what the
    longer ones left ("im no one": "no one" is read before "im no"). A rule whose words are not in
    the piece at all is passed over without its pattern: most clauses hold none of them."""

    rules: Mapping[str, str]
    _ordered: tuple[tuple[str, re.Pattern[str], str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(
            (key, re.compile(r"\b" + re.escape(key) + r"\b"), value)
            for key, value in sorted(self.rules.items(), key=lambda rule: -len(rule[0]))
        )
        object.__setattr__(self, "_ordered", ordered)

    def apply(self, piece: str) -> str:
        for key, pattern, value in self._ordered:
            if key in piece:
                piece = pattern.sub(value, piece)
        return piece


@dataclass(frozen=True)
class Token:
    """One word of a clause as the patterns read it."""

    stem: str
    word: str  # the normalised word
    raw: str  # the participant's word it came from
    filler: bool = False  # a word a pattern may step over ("don't *really* want to be alive")


@dataclass(frozen=True)
class Slot:
    """One position of a pattern: the stems (or stem prefixes) it accepts."""

    stems: frozenset[str]
    prefixes: tuple[str, ...] = ()
    exact: frozenset[str] = frozenset()  # "=word": this form only, not its stem
    optional: bool = False
    gap: int = 0  # how many words this slot may skip (a "..." or "....")
    end: bool = False
    or_end: bool = False  # "a|$": the word, or the end of the clause

    @property
    def required(self) -> bool:
        """A word the pattern cannot match without (not optional, not a gap, not the clause's end)."""
        return not (self.optional or self.gap or self.end)

    def accepts(self, token: Token) -> bool:
        # The commonest case first, and str.startswith given the prefixes at once (no generator):
        # every text asks this thousands of times.
        if token.stem in self.stems:
            return True
        if self.exact and token.word in self.exact:
            return True
        return bool(self.prefixes) and token.word.startswith(self.prefixes)


@dataclass(frozen=True)
class Pattern:
    source: str
    slots: tuple[Slot, ...]
    # Stems of which at least one must be in a clause for the pattern to be tried.
    anchors: frozenset[str]
    anchor_prefixes: tuple[str, ...]
    # The pattern itself says who it is about ("myself", "my life"): no other-person hold-back.
    about_self: bool

    def could_match(self, tokens: Sequence[Token]) -> bool:
        """Cheap test first: the pattern's rarest word is somewhere in the clause."""
        if self.anchor_prefixes and any(t.word.startswith(self.anchor_prefixes) for t in tokens):
            return True
        return any(t.stem in self.anchors for t in tokens)


# What one of a pattern's words needs in a clause: one of these stems, or one of these words exactly.
Needed = tuple[frozenset[str], frozenset[str]]


def _needed(pattern: Pattern) -> list[Needed]:
    """The words a clause must hold somewhere for the pattern to match it: one for each slot that is
    neither optional nor a gap nor the clause's end. (Slots taking word prefixes are left out: they
    are rare, and checked when the pattern is tried.)"""
    return [(slot.stems, slot.exact) for slot in pattern.slots if slot.required and not slot.prefixes]


@dataclass(frozen=True)
class AnchorIndex:
    """A list of patterns by their anchors (`Pattern.could_match`): which of them a clause could
    match, without asking each pattern in turn. Of those, a pattern is tried only if the clause
    holds a word for every slot it cannot do without: most patterns sharing an anchor ("fine",
    "thanks") need other words the clause does not have, and trying one costs far more than this.
    The slots' needs are numbered once (some 4,000 distinct among 60,000 patterns): a clause's
    words give the numbers it meets, and a pattern is kept if its own are among them."""

    by_anchor: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    prefixed: tuple[tuple[int, tuple[str, ...]], ...] = ()  # (position, its anchor prefixes)
    needs: tuple[tuple[int, ...], ...] = ()  # by position: the numbers of its slots' needs (`_needed`)
    met_by_stem: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # a stem -> the needs it meets
    met_by_word: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # an exact word -> the needs it meets
    any_prefix: tuple[str, ...] = ()  # every anchor prefix of `prefixed`

    @classmethod
    def of(cls, patterns: Sequence[Pattern]) -> AnchorIndex:
        by_anchor: dict[str, list[int]] = {}
        for position, pattern in enumerate(patterns):
            for anchor in pattern.anchors:
                by_anchor.setdefault(anchor, []).append(position)
        prefixed = tuple((i, p.anchor_prefixes) for i, p in enumerate(patterns) if p.anchor_prefixes)
        numbers: dict[Needed, int] = {}
        shared: dict[tuple[int, ...], tuple[int, ...]] = {}  # one tuple for patterns needing the same
        needs = tuple(
            shared.setdefault(key, key)
            for key in (tuple(sorted({numbers.setdefault(n, len(numbers)) for n in _needed(p)})) for p in patterns)
        )
        by_stem: dict[str, list[int]] = {}
        by_word: dict[str, list[int]] = {}
        for (stems, exact), number in numbers.items():
            for stem in stems:
                by_stem.setdefault(stem, []).append(number)
            for word in exact:
                by_word.setdefault(word, []).append(number)
        return cls(
            {k: tuple(v) for k, v in by_anchor.items()},
            prefixed,
            needs,
            {k: tuple(v) for k, v in by_stem.items()},
            {k: tuple(v) for k, v in by_word.items()},
            tuple(sorted({prefix for _position, prefixes in prefixed for prefix in prefixes})),
        )

    def anchored(self, tokens: Sequence[Token]) -> set[int]:
        """The positions of the patterns whose anchor is in this clause."""
        found: set[int] = set()
        for token in tokens:
            found.update(self.by_anchor.get(token.stem, ()))
        if any(t.word.startswith(self.any_prefix) for t in tokens):  # most clauses hold none
            for position, prefixes in self.prefixed:
                if any(t.word.startswith(prefixes) for t in tokens):
                    found.add(position)
        return found

    def candidates(self, tokens: Sequence[Token]) -> list[int]:
        """The positions of the patterns worth trying on this clause, in list order: anchored, and
        every need of theirs met by a word of the clause."""
        met: set[int] = set()
        for token in tokens:
            met.update(self.met_by_stem.get(token.stem, ()))
            met.update(self.met_by_word.get(token.word, ()))
        needs = self.needs
        return sorted(i for i in self.anchored(tokens) if met.issuperset(needs[i]))


@dataclass(frozen=True)
class Family:
    signal: str
    name: str
    label: str
    patterns: tuple[Pattern, ...]
    # Said anywhere in the text, one of these must be for the family's words to count: "I just
    # want to be with him" is risk beside a death ("took his own life", "since dad passed").
    needs: tuple[Pattern, ...] = ()
    # The danger is from another person (a threat, violence, being kept in): the reply says how to
    # reach the police unheard, not what to do with thoughts of self-harm.
    from_others: bool = False


@dataclass(frozen=True)
class HoldBack:
    """The contexts in which a match of one signal is set aside, as data."""

    negators: frozenset[str] = frozenset()
    negation_reach: int = 3
    # Words that may stand between a denial and what it denies ("not had ANY THOUGHTS OF
    # suicide"); any other word ends the denial's reach ("can't sleep and I want to die").
    negation_fillers: frozenset[str] = frozenset()
    # A negator inside one of these denies nothing: a condition ("if I don't hurt myself they'll
    # hurt my kids", "unless I do it").
    not_denials: tuple[Pattern, ...] = ()
    # Said anywhere in the text, these take a denial back ("not gonna do anything daft. Probably",
    # "haven't done anything yet"): the words it denied are kept.
    denial_undone: tuple[Pattern, ...] = ()
    # Who else a text may be about, as words (a plural "s" allowed): "here" shares the stem of "her".
    others: frozenset[str] = frozenset()
    # Words that make one of `others` no subject when just before it, or before "my", "his"...
    # ("since dad's anniversary the thoughts are back": the thoughts are the writer's).
    not_subject_after: frozenset[str] = frozenset()
    # Said anywhere in the text, these say the writer is texting about the person the service
    # supports ("this is his mum", "your client"): someone else as the subject is no reason then.
    on_behalf: tuple[Pattern, ...] = ()
    # Said anywhere in the text, these say someone is in danger now ("he's missing", "no answer at
    # the door"): whoever the words are about, a person reads it today, so nothing is set aside
    # as being about someone else.
    danger_now: tuple[Pattern, ...] = ()
    past: tuple[Pattern, ...] = ()
    recurrence: tuple[Pattern, ...] = ()
    recurrence_here: tuple[Pattern, ...] = ()
    # Good news come back ("working again", "feel like myself again"): a recurrence inside one of
    # these says nothing bad is back.
    renewal: tuple[Pattern, ...] = ()
    # Said anywhere in the text, these put what came before in the past ("that was years ago").
    past_anywhere: tuple[Pattern, ...] = ()
    # How long ago, said in any sentence, and how well they are now, in any: words told in the past
    # tense (`past_tense`) are history then ("tried to end it a few years ago. I'm grand now").
    long_ago: tuple[Pattern, ...] = ()
    resolved_now: tuple[Pattern, ...] = ()
    past_tense: frozenset[str] = frozenset()
    benign: tuple[Pattern, ...] = ()
    # The writer's own self ("myself"): an idiom explains a match only if it covers these words of it.
    own: frozenset[str] = frozenset()
    # Said anywhere in the text, these set aside the matches of `everyday_families` ("thanks for
    # everything" beside a new job or a move is an everyday goodbye), unless one of
    # `everyday_unless` is said anywhere too ("for good", "last time").
    everyday: tuple[Pattern, ...] = ()
    everyday_families: frozenset[str] = frozenset()
    everyday_unless: tuple[Pattern, ...] = ()


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
    rewrite: Rewrites
    clause_breaks: frozenset[str]
    vocabulary: frozenset[str]
    stems: frozenset[str]
    protected: frozenset[str]
    intensifiers: frozenset[str]
    fillers: frozenset[str] = frozenset()
    # A sentence of a longer text that is wholly one of these is read as the signal's keyword.
    sentence_keywords: Mapping[str, frozenset[str]] = field(default_factory=dict)
    sounds_like: Mapping[str, str] = field(default_factory=dict)
    # Emoji read as the words they stand for ("🔪🩸 again"): (emoji, words), longest first.
    emoji: tuple[tuple[str, str], ...] = ()
    numbered: NumberedAnswers | None = None
    model: RiskModel | None = None
    _flat: Sequence[tuple[Family, Pattern]] = ()
    _deletes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    _anchors: AnchorIndex = AnchorIndex()  # of `_flat`

    def signals(self) -> set[str]:
        return {f.signal for f in self.families} | set(self.keywords)

    def __repr__(self) -> str:
        # Short on purpose: the whole compiled library would take minutes to print in a traceback.
        patterns = sum(len(f.patterns) for f in self.families)
        return f"Phrases({self.locale!r}: {len(self.families)} families, {patterns} patterns)"
