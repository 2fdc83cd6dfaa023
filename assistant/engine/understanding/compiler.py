"""Building a locale's `Phrases` from its parsed phrase files, checked against their own examples."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from assistant.engine.flow import FlowError
from assistant.engine.understanding.classifier import RiskModel, train_risk_model
from assistant.engine.understanding.numbered import NumberedAnswers
from assistant.engine.understanding.patterns import compile_patterns, literal_words
from assistant.engine.understanding.phrases import (
    SIGNALS,
    AnchorIndex,
    Family,
    HoldBack,
    Pattern,
    Phrases,
    Rewrites,
    Slot,
)
from assistant.engine.understanding.reader import plain_words, read
from assistant.engine.understanding.words import MIN_FUZZY, VARIATION, deletes, fuzzy_depth, stem

_Check = tuple[str, str, str, bool]  # where, signal, example text, whether it must be read as the signal
_HOLD_BACK_PATTERNS = (
    "not_denials",
    "denial_undone",
    "on_behalf",
    "danger_now",
    "past",
    "recurrence",
    "recurrence_here",
    "renewal",
    "past_anywhere",
    "resolved_now",
    "long_ago",
    "benign",
    "everyday",
    "everyday_unless",
)


@dataclass
class _WordLists:
    """The word lists any phrase file may add to, shared by every signal."""

    classes: dict[str, list[str]] = field(default_factory=dict)
    expand: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rewrites: dict[str, str] = field(default_factory=dict)
    clause_breaks: set[str] = field(default_factory=set)
    protected: set[str] = field(default_factory=set)
    intensifiers: set[str] = field(default_factory=set)
    fillers: set[str] = field(default_factory=set)
    keywords: dict[str, frozenset[str]] = field(default_factory=dict)
    sentence_keywords: dict[str, frozenset[str]] = field(default_factory=dict)
    sounds_like: dict[str, str] = field(default_factory=dict)
    emoji: dict[str, str] = field(default_factory=dict)

    def aliases(self) -> dict[str, str]:
        """A word the text-speak list turns into another single word is read as that word in patterns too."""
        return {word: words[0] for word, words in self.expand.items() if len(words) == 1}


@dataclass
class _SignalParts:
    """What the signal files compile to, gathered file by file."""

    families: list[Family] = field(default_factory=list)
    hold_back: dict[str, HoldBack] = field(default_factory=dict)
    suppresses: dict[str, frozenset[str]] = field(default_factory=dict)
    vocabulary: set[str] = field(default_factory=set)
    checks: list[_Check] = field(default_factory=list)
    slots: dict[str, Slot] = field(default_factory=dict)  # made once per token (`compile_patterns`)


@dataclass(frozen=True)
class CompiledBefore:
    """What compiling the very same files with the very same code found before: every example read
    as it says (else that compile failed), and the classifier it trained (None without training)."""

    model: RiskModel | None


def compile_phrases(
    files: Mapping[str, Mapping[str, Any]],
    *,
    locale: str,
    training: tuple[Sequence[str], Sequence[str]] | None = None,
    threshold: float = 0.0,
    small_talk: Iterable[str] = (),
    before: CompiledBefore | None = None,
) -> Phrases:
    """Build a locale's phrase knowledge from its parsed files (file name -> TOML data).

    Every family's `examples` must be read as that signal and every `not_examples`
    must not be: a phrase file that contradicts itself fails here, naming the file.
    `before`: the same files were compiled by this same code already, so the examples' check and
    the classifier's training (both the same every time) are taken from it, not done again.
    """
    lists = _read_word_lists(files)
    parts = _SignalParts(vocabulary=set(lists.protected))
    aliases = lists.aliases()
    for name, data in files.items():
        if data.get("signal") is not None:
            _add_signal_file(parts, name, data, lists.classes, aliases)
    phrases = replace(_assemble(locale, lists, parts), numbered=_numbered_answers(files))
    if before is None:
        _check_examples(phrases, parts.checks)
    if training is not None:
        risk, ordinary = training
        model = before.model if before is not None else None
        if model is None:
            model = train_risk_model(phrases, risk, ordinary, threshold=threshold)
        phrases = replace(phrases, model=replace(model, small_talk=frozenset(map(plain_words, small_talk))))
    return phrases


def _numbered_answers(files: Mapping[str, Mapping[str, Any]]) -> NumberedAnswers | None:
    """A questionnaire answered as a numbered list, from the file that says which items are risk."""
    for data in files.values():
        if "numbered_answers" in data:
            numbered = data["numbered_answers"]
            return NumberedAnswers(
                label=str(numbered["label"]),
                least_items=int(numbered["least_items"]),
                risk_from={int(item): int(value) for item, value in numbered["risk_from"].items()},
                scale_words=tuple(str(word).lower() for word in numbered.get("scale_words", ())),
                in_order=int(numbered.get("in_order", 0)),
            )
    return None


def _read_word_lists(files: Mapping[str, Mapping[str, Any]]) -> _WordLists:
    lists = _WordLists()
    for name, data in files.items():
        lists.sounds_like |= {str(k): str(v) for k, v in data.get("sounds_like", {}).items()}
        lists.emoji |= {str(k).replace(VARIATION, ""): str(v) for k, v in data.get("emoji", {}).items()}
        for key, words in data.get("classes", {}).items():
            lists.classes.setdefault(key, []).extend(str(w) for w in words)
        for key, value in data.get("expand", {}).items():
            lists.expand[str(key)] = tuple(str(value).split())
        for key, value in data.get("rewrite", {}).items():
            lists.rewrites[str(key)] = str(value)
        lists.clause_breaks |= set(data.get("clause_breaks", []))
        lists.protected |= set(data.get("protected", []))
        lists.intensifiers |= set(data.get("intensifiers", []))
        lists.fillers |= set(data.get("fillers", []))
        for key, words in data.get("keywords", {}).items():
            if key not in SIGNALS:
                raise FlowError(f"{name}: unknown keyword signal {key!r}")
            lists.keywords[key] = frozenset(str(w) for w in words)
    for name, data in files.items():
        sentence = data.get("sentence_keywords", {})
        for key in sentence.get("read", []):
            if key not in lists.keywords:
                raise FlowError(f"{name}: sentence_keywords reads {key!r}, which has no keywords")
            lists.sentence_keywords[key] = lists.keywords[key] - {str(w) for w in sentence.get("except", [])}
    return lists


def _add_signal_file(
    parts: _SignalParts, name: str, data: Mapping[str, Any], classes: Mapping[str, list[str]], aliases: dict[str, str]
) -> None:
    """One signal's file: its families of patterns, what holds them back, and the examples to check."""
    signal = data["signal"]
    if signal not in SIGNALS:
        raise FlowError(f"{name}: unknown signal {signal!r}")
    if not set(data.get("suppresses", [])) <= set(SIGNALS) - {"risk"}:
        raise FlowError(f"{name}: suppresses must name signals other than risk")
    parts.suppresses[signal] = frozenset(data.get("suppresses", []))
    for family_name, family in data.get("families", {}).items():
        source = f"{name}: families.{family_name}"
        texts = [str(p) for p in family.get("patterns", [])]
        if not texts:
            raise FlowError(f"{source}: no patterns")
        patterns = compile_patterns(texts, classes, source, aliases, parts.slots)
        needs = [str(p) for p in family.get("needs", [])]
        parts.vocabulary |= _words_of(texts + needs, classes)
        label = str(family.get("label", family_name))
        parts.families.append(
            Family(
                signal,
                family_name,
                label,
                patterns,
                compile_patterns(needs, classes, source, aliases, parts.slots),
                from_others=bool(family.get("from_others", False)),
            )
        )
        parts.checks += [(source, signal, str(e), True) for e in family.get("examples", [])]
        parts.checks += [(source, signal, str(e), False) for e in family.get("not_examples", [])]
    hb = data.get("hold_back", {})
    source = f"{name}: hold_back"
    parts.hold_back[signal] = _hold_back(hb, classes, source, aliases, parts.slots)
    parts.vocabulary |= _words_of((str(p) for key in _HOLD_BACK_PATTERNS for p in hb.get(key, [])), classes)
    parts.checks += [(source, signal, str(e), False) for e in hb.get("examples", [])]


def _hold_back(
    hb: Mapping[str, Any],
    classes: Mapping[str, list[str]],
    source: str,
    aliases: dict[str, str],
    slots: dict[str, Slot],
) -> HoldBack:
    def patterns(key: str) -> tuple[Pattern, ...]:
        return compile_patterns(hb.get(key, []), classes, source, aliases, slots)

    return HoldBack(
        # Words, not stems: "note" shares the stem of "not".
        negators=frozenset(hb.get("negators", [])),
        negation_reach=int(hb.get("negation_reach", 3)),
        # Words too: "here" shares the stem of "her".
        others=frozenset(hb.get("others", [])),
        not_subject_after=frozenset(hb.get("not_subject_after", [])),
        on_behalf=patterns("on_behalf"),
        danger_now=patterns("danger_now"),
        past=patterns("past"),
        recurrence=patterns("recurrence"),
        recurrence_here=patterns("recurrence_here"),
        renewal=patterns("renewal"),
        past_anywhere=patterns("past_anywhere"),
        resolved_now=patterns("resolved_now"),
        long_ago=patterns("long_ago"),
        past_tense=frozenset(hb.get("past_tense", [])),
        negation_fillers=frozenset(stem(w) for w in hb.get("negation_fillers", [])),
        not_denials=patterns("not_denials"),
        denial_undone=patterns("denial_undone"),
        benign=patterns("benign"),
        own=frozenset(hb.get("own", [])),
        everyday=patterns("everyday"),
        everyday_families=frozenset(hb.get("everyday_families", [])),
        everyday_unless=patterns("everyday_unless"),
    )


def _words_of(texts: Iterable[str], classes: Mapping[str, list[str]]) -> set[str]:
    found: set[str] = set()
    for text in texts:
        found |= literal_words(text, classes)
    return found


def _vocabulary(lists: _WordLists, parts: _SignalParts) -> frozenset[str]:
    """Every word the patterns and word lists name: what a misspelling may be corrected to."""
    vocabulary = set(parts.vocabulary)
    for words in lists.expand.values():
        vocabulary |= set(words)
    for words_set in lists.keywords.values():
        for phrase in words_set:
            vocabulary |= set(phrase.split())
    return frozenset(vocabulary | set(lists.expand) | lists.clause_breaks | lists.intensifiers)


def _deletes_index(vocabulary: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Each known word under every way of leaving letters out of it, to find misspellings fast."""
    index: dict[str, set[str]] = {}
    for word in vocabulary:
        if len(word) >= MIN_FUZZY - 1 and word.isalpha():
            for variant in deletes(word, fuzzy_depth(word)):
                index.setdefault(variant, set()).add(word)
    return {k: tuple(sorted(v)) for k, v in index.items()}


def _assemble(locale: str, lists: _WordLists, parts: _SignalParts) -> Phrases:
    vocabulary = _vocabulary(lists, parts)
    return Phrases(
        locale=locale,
        families=tuple(parts.families),
        hold_back=parts.hold_back,
        suppresses=parts.suppresses,
        keywords=lists.keywords,
        sentence_keywords=lists.sentence_keywords,
        expand=lists.expand,
        rewrite=Rewrites(lists.rewrites),
        clause_breaks=frozenset(lists.clause_breaks),
        vocabulary=vocabulary,
        stems=frozenset(stem(w) for w in vocabulary),
        protected=frozenset(lists.protected),
        intensifiers=frozenset(lists.intensifiers),
        fillers=frozenset(lists.fillers),
        sounds_like=lists.sounds_like,
        emoji=tuple(sorted(lists.emoji.items(), key=lambda kv: -len(kv[0]))),
        _deletes=_deletes_index(vocabulary),
        _anchors=AnchorIndex.of([p for f in parts.families for p in f.patterns]),
        _flat=tuple((f, p) for f in parts.families for p in f.patterns),
    )


def _check_examples(phrases: Phrases, checks: Iterable[_Check]) -> None:
    """Every example must be read as its signal, every counter-example not: else fail, naming them all."""
    failures = []
    for source, signal, example, expected in checks:
        found = any(s.kind == signal for s in read(example, phrases).signals)
        if found != expected:
            verb = "is not read as" if expected else "is read as"
            failures.append(f"{source}: example {example!r} {verb} {signal!r}")
    if failures:
        raise FlowError("\n".join(failures))
