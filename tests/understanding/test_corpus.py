"""The labelled corpus: every text that reads like risk to self must be caught; the false
alarms on ordinary texts are reported (and held under a ceiling so a change that floods
specialists with false alarms fails too). `benchmarks/understanding.py` prints the figures
per category."""

from __future__ import annotations

from collections import Counter

import pytest

from assistant.content.library import phrase_library
from assistant.engine.understanding import Phrases, read

from .conftest import ROOT, rows

RISK = rows("risk.tsv", 2)
ORDINARY = rows("not_risk.tsv", 2)
SIGNALS = rows("signals.tsv", 3)
FALSE_ALARM_CEILING = 0.05


def test_the_corpus_is_big_and_varied_enough() -> None:
    risk_categories = Counter(category for category, _ in RISK)
    ordinary_categories = Counter(category for category, _ in ORDINARY)
    assert len(RISK) >= 400 and len(ORDINARY) >= 400
    assert set(risk_categories) >= {"direct", "indirect", "plans_means", "self_harm", "goodbye", "textspeak_misspelt"}
    assert set(ordinary_categories) >= {"idioms", "work_talk", "other_people", "past_history", "appointment_replies"}
    assert min(risk_categories.values()) >= 40
    texts = [t.lower() for _, t in RISK + ORDINARY]
    assert len(texts) == len(set(texts)), "a text is in the corpus twice"


def test_every_risk_text_is_caught(phrases: Phrases) -> None:
    missed = [f"[{category}] {text}" for category, text in RISK if not read(text, phrases).has("risk")]
    assert not missed, "risk texts not read as risk:\n" + "\n".join(missed)


def test_every_risk_reading_says_why(phrases: Phrases) -> None:
    for _category, text in RISK[:100]:
        signal = read(text, phrases).first("risk")
        assert signal is not None and signal.words.strip(), text


def test_what_the_classifier_read_is_shown_in_the_participants_own_words(phrases: Phrases) -> None:
    """A classifier reading names the words of the text that weighed most, never its internal stems."""
    from assistant.engine.understanding.tokens import clauses_of

    shown = 0
    for _category, text in RISK + ORDINARY:
        for signal in read(text, phrases).signals:
            if signal.family == "classifier":
                shown += 1
                # The text as written, after only the spelling clean-up the reader shows in every signal.
                theirs = {token.raw for clause in clauses_of(phrases, text) for token in clause}
                for chunk in signal.words.split(", "):
                    assert set(chunk.split()) <= theirs, (text, signal.words)
    assert shown > 0


def test_false_alarms_are_reported_and_rare(phrases: Phrases, capsys: pytest.CaptureFixture[str]) -> None:
    alarms = [(c, t) for c, t in ORDINARY if read(t, phrases).has("risk")]
    rate = len(alarms) / len(ORDINARY)
    with capsys.disabled():
        print(f"\nfalse alarms on ordinary texts: {len(alarms)}/{len(ORDINARY)} ({100 * rate:.1f}%)")
    assert rate <= FALSE_ALARM_CEILING, "\n".join(f"[{c}] {t}" for c, t in alarms)


# Replies the signals corpus marks as answers to a question ("NO" to a reminder) are read
# through that question, as the assistant reads them.
CONTEXT_ANSWERS = {"reminder": {"no": "cancel", "yes": "confirm"}}


@pytest.mark.parametrize(
    "signal",
    ["call", "cancel", "rebook", "stop", "pause", "wrong_person", "new_number", "help", "less", "more", "contact_time"],
)
def test_other_signals_are_mostly_read(phrases: Phrases, signal: str) -> None:
    """Not every request has to be caught (a person reads every text), but most must be, and
    few texts may be read as a request they are not."""
    from assistant.content.library import Catalog, FlowLibrary

    flows = FlowLibrary(ROOT / "flows", Catalog(ROOT / "messages"))
    reminder = flows.get("appointment_reminder")
    assert reminder is not None
    question = reminder.nodes["remind"].ask
    expected, found = [], []
    for labels, context, text in SIGNALS:
        reading = read(text, phrases, question if context == "reminder" else None)
        kinds = set(reading.kinds())
        if context == "reminder" and reading.answer is not None:
            kinds.add(CONTEXT_ANSWERS["reminder"].get(reading.answer.value, ""))
        expected.append(signal in labels.split(","))
        found.append(signal in kinds)
    positives = [f for e, f in zip(expected, found, strict=True) if e]
    negatives = [f for e, f in zip(expected, found, strict=True) if not e]
    assert positives, f"no {signal} texts in the corpus"
    assert sum(positives) / len(positives) >= 0.7, f"{signal}: {sum(positives)}/{len(positives)} read"
    assert sum(negatives) / len(negatives) <= 0.05, f"{signal}: {sum(negatives)} false readings"


def test_the_phrases_load_through_the_library_once_per_version() -> None:
    assert phrase_library(ROOT / "phrases") is phrase_library(ROOT / "phrases")
