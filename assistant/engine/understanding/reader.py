"""Reading one text: its signals with the words behind them, what was held back, and the answer."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from assistant.engine.choices import match_choice
from assistant.engine.flow import Choice, Question
from assistant.engine.text import keyword, normalise, without_courtesy
from assistant.engine.understanding.classifier import RiskModel, features, their_words
from assistant.engine.understanding.matching import (
    WholeText,
    find,
    found_anywhere,
    someone_else_is_subject,
    why_held,
)
from assistant.engine.understanding.phrases import Phrases, Token
from assistant.engine.understanding.tokens import clauses_of
from assistant.engine.understanding.words import NOT_WORD, simplify


@dataclass(frozen=True)
class Signal:
    """One thing a text says, and the participant's own words that showed it."""

    kind: str
    family: str
    label: str
    words: str
    # Someone else writing about the person ("this is his mum, he has taken pills"): the words'
    # subject is another person, and the text says that person is the one the service supports.
    by_someone_else: bool = False
    # The danger the words tell of comes from another person: someone threatening or hurting them.
    from_others: bool = False


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

    @property
    def by_someone_else(self) -> bool:
        """All the risk in it is told by someone else about the person (the reply should not greet
        them); any risk in their own words and the reply is theirs."""
        risk = [s for s in self.signals if s.kind == "risk"]
        return bool(risk) and all(s.by_someone_else for s in risk)

    @property
    def from_others(self) -> bool:
        """Every rule that read risk read danger from another person (the classifier's reading
        alone says nothing of whose): any risk to self and the reply is about that."""
        ruled = [s for s in self.signals if s.kind == "risk" and s.family != "classifier"]
        return bool(ruled) and all(s.from_others for s in ruled)

    def has(self, kind: str) -> bool:
        return any(s.kind == kind for s in self.signals)

    def first(self, kind: str) -> Signal | None:
        return next((s for s in self.signals if s.kind == kind), None)

    def kinds(self) -> list[str]:
        return list(dict.fromkeys(s.kind for s in self.signals))

    def words(self, kind: str) -> list[str]:
        return list(dict.fromkeys(s.words for s in self.signals if s.kind == kind))


def read(text: str, phrases: Phrases, question: Question | None = None, *, named: str | None = None) -> Reading:
    """Every signal in one text, with the words behind it, and the answer to `question`.

    `named` is the first name of the person whose phone sent the text, where known: a text that
    names them ("this is Jordan's mum", "Jordan has taken pills") is someone texting about them,
    so another person as the subject of risk words is them, not someone else."""
    clauses = clauses_of(phrases, text)
    signals, held, explained = _pattern_signals(phrases, clauses, _names(clauses, named))
    numbered = phrases.numbered
    if numbered and (answered := numbered.risk_in(text)):
        signals.append(Signal("risk", "numbered_answers", numbered.label, answered))
    answer = answer_to(phrases, question, text, {s.kind for s in signals}) if question else None
    # A reply that is wholly one of the question's own answers ("nearly every day") is an
    # answer, not free text: only the phrase rules read it.
    whole_answer = answer is not None and normalise(text) in answer.match
    small_talk = phrases.model is not None and plain_words(text) in phrases.model.small_talk
    if phrases.model is not None and not whole_answer and not small_talk and not any(s.kind == "risk" for s in signals):
        about_the_texts = any(s.kind in ABOUT_THE_TEXTS for s in signals) or any(map(_keeps_the_texts, held))
        signal = _classifier_signal(phrases, phrases.model, clauses, held, explained, about_the_texts)
        if signal is not None:
            signals.append(signal)
    keyword = _keyword(phrases, text)
    if keyword and not any(s.kind == keyword for s in signals):
        signals.insert(0, Signal(keyword, "keyword", keyword, text.strip()))
    if not keyword:
        signals += [
            Signal(kind, "keyword", kind, words)
            for kind, words in _keyword_sentences(phrases, text)
            if not any(s.kind == kind for s in signals)
        ]
    # A risk match anywhere outranks a hold-back of the same words elsewhere: keep signals only once.
    signals = _dedupe(signals)
    present = {s.kind for s in signals}
    dropped = {kind for signal in present for kind in phrases.suppresses.get(signal, frozenset())}
    signals = [s for s in signals if s.kind not in dropped]
    return Reading(text=text, signals=tuple(signals), held_back=tuple(held), answer=answer, keyword=keyword)


SENTENCE_MARKS = re.compile(r"[.!?;,:\n]+|\s-+\s|\s(?:and|&|\+)\s", re.IGNORECASE)
FULL_STOPS = re.compile(r"(?:(?<!\d)\.|\.(?!\d)|[!?;\n])+")  # a decimal point ("1.30") ends no sentence

# Signals whose words are wholly about arranging contact: words read as one of these ("can't come
# Thursday") never count towards risk for the classifier (they may still count against it). Risk
# patterns still read them; stopping and pausing are left out: "I want it all to stop" may be either.
LOGISTICS = frozenset(
    {"cancel", "rebook", "call", "contact_time", "wrong_person", "new_number", "help", "less", "more"}
)


# A text read as one of these is about the texts themselves (stopping, a pause, a new number, how
# often): the classifier needs more to read risk in the rest of it, as it does where a rule has set
# risk words aside. Not the appointments: risk is often told beside a cancellation or a call request.
ABOUT_THE_TEXTS = (LOGISTICS - {"cancel", "rebook", "call"}) | {"stop", "pause"}
_THE_TEXTS = frozenset({"text", "texts", "texting", "messages", "messaging", "msgs", "reminders", "ins", "checkins"})


def _keeps_the_texts(held: HeldBack) -> bool:
    """A stop or a pause of the texts themselves, set aside ("please don't stop the texts, they keep
    me going"): the text is still about the texts. Not other stops ("can't stop crying")."""
    return held.kind in {"stop", "pause"} and not _THE_TEXTS.isdisjoint(held.words.lower().split())


def _names(clauses: Sequence[Sequence[Token]], name: str | None) -> bool:
    """Whether the text names the person by their first name (or its possessive, "Jordan's")."""
    first = NOT_WORD.sub("", simplify(name or "").split(" ")[0]) if name else ""
    if len(first) < 2:
        return False
    return any(t.raw in (first, f"{first}s") for tokens in clauses for t in tokens)


def _pattern_signals(
    phrases: Phrases, clauses: Sequence[Sequence[Token]], about_them: bool = False
) -> tuple[list[Signal], list[HeldBack], set[tuple[int, int]]]:
    """What the phrase files' patterns find in each clause: kept, or held back by their context;
    and where the words read as arranging contact are (clause, token)."""
    flat_patterns = phrases._flat
    signals: list[Signal] = []
    held: list[HeldBack] = []
    explained: set[tuple[int, int]] = set()
    seen: set[tuple[str, str]] = set()
    text = WholeText(clauses)
    for number, tokens in enumerate(clauses):
        for index in phrases._anchors.candidates(tokens):
            family, pattern = flat_patterns[index]
            span = find(pattern, tokens)
            if span is None or (family.needs and not text.has(family.needs)):
                continue
            words = _raw_words(tokens, span[:2])
            if family.signal in LOGISTICS:
                explained.update((number, k) for k in range(span[0], span[1]))
            if (family.signal, words) in seen:
                continue
            hold = phrases.hold_back.get(family.signal)
            because = (
                why_held(hold, pattern, tokens, span, text, about_them, family.name, family.from_others)
                if hold
                else None
            )
            if because:
                # Another pattern may still read the same words (one that takes the "not" as its own).
                held.append(HeldBack(family.signal, family.name, words, because))
            else:
                seen.add((family.signal, words))
                told = family.name == "someone_else" or (
                    hold is not None and someone_else_is_subject(hold, pattern, tokens, span[0], span[1])
                )
                signals.append(
                    Signal(
                        family.signal,
                        family.name,
                        family.label,
                        words,
                        by_someone_else=told,
                        from_others=family.from_others,
                    )
                )
    return signals, held, explained


def _runs(clauses: Sequence[Sequence[Token]], keep: Callable[[int, int], bool]) -> list[list[Token]]:
    """The clauses' unbroken runs of the tokens `keep` (clause, token) says yes to."""
    runs: list[list[Token]] = []
    for number, tokens in enumerate(clauses):
        run: list[Token] = []
        for k, token in enumerate(tokens):
            if keep(number, k):
                run.append(token)
            elif run:
                runs.append(run)
                run = []
        if run:
            runs.append(run)
    return runs


def _classifier_signal(
    phrases: Phrases,
    model: RiskModel,
    clauses: Sequence[Sequence[Token]],
    held: Sequence[HeldBack],
    explained: set[tuple[int, int]],
    about_the_texts: bool = False,
) -> Signal | None:
    """Risk read by the classifier, when no pattern has read it, with the words that weighed most."""
    found = features(clauses)
    if explained:
        # Features only the words arranging contact give, and that point towards risk, are left out.
        elsewhere = set(features(_runs(clauses, lambda n, k: (n, k) not in explained)))
        logistics = set(features(_runs(clauses, lambda n, k: (n, k) in explained))) - elsewhere
        found = [f for f in found if f not in logistics or model.weights.get(f, 0.0) <= 0]
    score, reasons = model.score(found)
    # Where a phrase rule has already set risk words aside (someone else, the past, a
    # denial) or the text holds a known harmless idiom, the classifier needs more to overrule it.
    risk_hold = phrases.hold_back.get("risk")
    set_aside = any(h.kind == "risk" for h in held) or (
        risk_hold is not None and found_anywhere(risk_hold.benign, clauses)
    )
    margin = model.held_back_margin if set_aside or about_the_texts else 0.0
    if score > model.threshold + margin:
        words = ", ".join(dict.fromkeys(their_words(feature, clauses) for feature in reasons))
        return Signal("risk", "classifier", "reads like texts that were risk", words)
    return None


def _raw_words(tokens: Sequence[Token], span: tuple[int, int]) -> str:
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
    words = plain_words(text)
    if len(set(words.split())) == 1:  # a keyword said again for emphasis: "STOP STOP STOP"
        words = words.split()[0]
    for kind, choices in phrases.keywords.items():
        if words in choices:
            return kind
    return None


# A sentence of a longer text that is wholly one of the keywords `[sentence_keywords]` names
# (keywords.toml) is that keyword ("CALL. Really need to talk", "I never gave you this number. Stop"):
# the reminders ask for the word, and the carrier acts only on a bare STOP, so the service asks, as it
# does for any stop.
def _keyword_sentences(phrases: Phrases, text: str) -> list[tuple[str, str]]:
    sentences = [words for part in SENTENCE_MARKS.split(text) if (words := plain_words(part))]
    if len(sentences) < 2:
        return []
    found = {kind: s for s in sentences for kind, words in phrases.sentence_keywords.items() if s in words}
    return list(found.items())


def answer_to(phrases: Phrases, question: Question, text: str, signals: set[str] | None = None) -> Choice | None:
    """The choice a reply picks: its words ("well bad" is bad: "well" only intensifies),
    else a signal a choice stands for (a cancellation answers a reminder's NO)."""
    choice = match_choice(question, text, phrases.intensifiers)
    first = FULL_STOPS.split(text.strip(), maxsplit=1)[0]
    if choice is None and first != text.strip():  # "No. Can't get childcare": the first sentence answers
        choice = match_choice(question, first, phrases.intensifiers)
    words = simplify(text).split()
    if len(words) > 1 and NOT_WORD.sub("", words[0]) in phrases.intensifiers:
        choice = match_choice(question, " ".join(words[1:]), phrases.intensifiers) or choice
    if choice is None and signals:
        choice = next((c for c in question.choices if set(c.signals) & signals), None)
    return choice


def plain_words(text: str) -> str:
    """The text's words alone, as whole-text lists hold them: kisses or thanks after the words
    ("call x", "ring me please") sign a text off."""
    return without_courtesy(" ".join(NOT_WORD.sub(" ", simplify(text)).split()))
