"""Content that is not code: flows from flows/, wording from messages/, phrase knowledge from phrases/."""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from assistant.content import phrase_cache
from assistant.content.wording import lock_screen_words
from assistant.engine import Flow, FlowError, Instrument, load_flow, load_instrument, questionnaire_flow
from assistant.engine.understanding import Phrases, compile_phrases

log = logging.getLogger(__name__)

FALLBACK_LOCALE = "en-GB"
CRISIS_KEY = "common/crisis"
# Sent when the crisis signposting cannot be rendered for any reason (a broken or missing template, odd
# data on the record): the UK-wide numbers, in plain GSM-7, fixed here so nothing can stop it going.
CRISIS_FALLBACK = (
    "If you feel you might act on these thoughts, call 999 or go to A&E. For urgent help call NHS 111, "
    "or call Samaritans free on 116 123, any time. You can also text SHOUT to 85258. "
    "Texts to this number are not watched around the clock."
)


# Jinja comments, statements and expressions: what is left is the template's own wording.
_TEMPLATE_CODE = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", re.DOTALL)


# What texts are signed with when there is no specialist to name, or theirs has left: it gives
# nothing away. Where it starts a sentence ("Thanks for letting me know. the team") it takes a capital.
NEUTRAL_SIGNATURE = "the team"
_NEUTRAL_STARTING = re.compile(r"(^|[.!?]\s+)the team\b")


def with_capital_signature(text: str) -> str:
    return _NEUTRAL_STARTING.sub(lambda found: found.group(1) + "The team", text)


class Catalog:
    """Message templates at messages/<locale>/<flow>/<key>.txt, rendered strictly."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # The locales are the folders under messages/, read once like the rest of the content.
        self.known_locales = frozenset(self.locales()) if directory.is_dir() else frozenset()
        if problems := self.lock_screen_problems():
            raise FlowError("words that would show on a lock screen: " + "; ".join(problems))
        # Plain text, not HTML: no autoescaping. Participant text is only ever a
        # variable, never part of a template, so it cannot inject template code.
        # Templates are read once per process, like flows and phrases: no look at the file's time on
        # every render (a changed template is read by the next process).
        self.env = Environment(
            loader=FileSystemLoader(str(directory)),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            auto_reload=False,
        )
        self._templates = {f"{locale}/{key}.txt" for locale in self.known_locales for key in self.keys(locale)}

    def lock_screen_problems(self) -> list[str]:
        """Each template whose own wording (not its variables) has a lock-screen giveaway, unless
        messages/budgets.toml lists it under lock_screen_exempt."""
        budgets = self.directory / "budgets.toml"
        exempt = set(_read(budgets).get("lock_screen_exempt", {}).get("keys", [])) if budgets.is_file() else set()
        problems = []
        for locale in self.known_locales:
            for key in sorted(self.keys(locale) - exempt):
                source = (self.directory / locale / f"{key}.txt").read_text(encoding="utf-8")
                if words := lock_screen_words(_TEMPLATE_CODE.sub(" ", source)):
                    problems.append(f"{locale}/{key}.txt: {', '.join(words)}")
        return problems

    def locales(self) -> list[str]:
        return sorted(p.name for p in self.directory.iterdir() if p.is_dir())

    def keys(self, locale: str = FALLBACK_LOCALE) -> set[str]:
        base = self.directory / locale
        return {p.relative_to(base).with_suffix("").as_posix() for p in base.rglob("*.txt")}

    def template_name(self, key: str, locale: str) -> str:
        name = f"{locale}/{key}.txt"
        return name if name in self._templates else f"{FALLBACK_LOCALE}/{key}.txt"

    def render(self, key: str, variables: Mapping[str, Any], locale: str = FALLBACK_LOCALE) -> str:
        """The message in the person's locale; in the default locale when theirs is not one we have
        (whatever the record says) or its template fails to render."""
        if locale != FALLBACK_LOCALE and locale in self.known_locales:
            try:
                return self._render(self.template_name(key, locale), variables)
            except Exception as exc:  # a broken translation never stops the message
                log.error("%s in %s failed to render (%s): using %s", key, locale, type(exc).__name__, FALLBACK_LOCALE)
        return self._render(f"{FALLBACK_LOCALE}/{key}.txt", variables)

    def _render(self, name: str, variables: Mapping[str, Any]) -> str:
        return with_capital_signature(self.env.get_template(name).render(**variables).strip())


class FlowLibrary:
    """Every flow in flows/ (older versions in flows/archive/), and instruments in flows/instruments/."""

    def __init__(self, directory: Path, catalog: Catalog) -> None:
        self.directory = directory
        self.current: dict[str, Flow] = {}
        self.versions: dict[tuple[str, int], Flow] = {}
        self.instruments: dict[str, Instrument] = {}
        self.scales: dict[str, Any] = {}
        self.message_keys = catalog.keys(FALLBACK_LOCALE)
        files = sorted(directory.glob("*.toml")) + sorted(directory.glob("archive/*.toml"))
        for path in files:
            data = _read(path)
            flow_id = str(data.get("id", ""))
            # A key with a slash names a shared message; a bare key is the flow's own.
            flow_keys = {k.split("/", 1)[1] for k in self.message_keys if k.startswith(flow_id + "/")}
            flow = load_flow(data, source=str(path), message_keys=flow_keys | self.message_keys)
            if (flow.id, flow.version) in self.versions:
                raise FlowError(f"{path}: {flow.id} version {flow.version} is defined twice")
            self.versions[(flow.id, flow.version)] = flow
            if path.parent == directory:
                if flow.id in self.current:
                    raise FlowError(f"{path}: flow {flow.id!r} is defined twice")
                self.current[flow.id] = flow
        instruments = directory / "instruments"
        if instruments.is_dir():
            scales = instruments / "scales.toml"
            self.scales = _read(scales) if scales.exists() else {}
            for path in sorted(instruments.glob("*.toml")):
                if path.name != "scales.toml":
                    instrument = load_instrument(_read(path), str(path))
                    self.instruments[instrument.id] = instrument
            for instrument in self.instruments.values():
                self.questionnaire([instrument.id])  # check each builds and its messages exist

    def questionnaire(self, instrument_ids: list[str]) -> Flow:
        """The flow that asks these instruments in turn (built once, then kept)."""
        missing = [i for i in instrument_ids if i not in self.instruments]
        if missing or not instrument_ids:
            raise FlowError(f"unknown instrument(s): {missing or instrument_ids}")
        flow_id = "questionnaire_" + "_".join(instrument_ids)
        if flow_id not in self.current:
            instruments = [self.instruments[i] for i in instrument_ids]
            flow = questionnaire_flow(
                instruments,
                self.scales,
                source=str(self.directory / "instruments"),
                offer_link=any(self.private_items(i) for i in instruments),
            )
            for node in flow.nodes.values():
                for key in (node.say, node.ask.reprompt if node.ask else None):
                    if key and key not in self.message_keys:
                        raise FlowError(f"{flow.source}: node {node.id!r} says {key!r}, which has no message")
            self.current[flow_id] = flow
            self.versions[(flow.id, flow.version)] = flow
        return self.current[flow_id]

    @staticmethod
    def private_items(instrument: Instrument) -> list[int]:
        """The items (numbers) whose wording, with the stem, would give something away on a lock
        screen: texted only after the participant agrees, otherwise asked on the private page."""
        return [
            number
            for number, item in enumerate(instrument.items, 1)
            if lock_screen_words(f"{instrument.stem if number == 1 else ''} {item}")
        ]

    def get(self, flow_id: str, version: int | None = None) -> Flow | None:
        if flow_id.startswith("questionnaire_") and flow_id not in self.current:
            try:
                self.questionnaire(flow_id.removeprefix("questionnaire_").split("_"))
            except FlowError:
                return None
        if version is None:
            return self.current.get(flow_id)
        return self.versions.get((flow_id, version))


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise FlowError(f"{path}: {exc}") from None


class PhraseLibrary:
    """What people mean, per locale: phrases/<locale>/*.toml, compiled and self-checked at start.
    `cache`: a folder keeping what a compile found (`phrase_cache`), for the next start on the same
    files and code; None compiles everything every time."""

    def __init__(self, directory: Path, cache: Path | None = None) -> None:
        self.directory = directory
        self.by_locale: dict[str, Phrases] = {}
        for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
            files = {str(path): _read(path) for path in sorted(folder.glob("*.toml"))}
            settings = files.get(str(folder / "classifier.toml"), {})
            training = folder / "training"
            examples = None
            if training.is_dir():
                examples = (_texts(training, "risk"), _texts(training, "not_risk"))
            key = phrase_cache.digest(folder) if cache is not None else ""
            before = phrase_cache.recall(cache, folder.name, key)
            compiled = self.by_locale[folder.name] = compile_phrases(
                files,
                locale=folder.name,
                training=examples,
                threshold=float(settings.get("threshold", 0.0)),
                small_talk=[str(text) for text in settings.get("small_talk", [])],
                before=before,
            )
            if before is None:
                phrase_cache.keep(cache, folder.name, key, compiled.model)
        if FALLBACK_LOCALE not in self.by_locale:
            raise FlowError(f"{directory}: no phrases for {FALLBACK_LOCALE}")

    def get(self, locale: str | None) -> Phrases:
        """A locale's phrases, or the default locale's: an unknown locale never stops a text being read."""
        return self.by_locale.get(locale or FALLBACK_LOCALE) or self.by_locale[FALLBACK_LOCALE]


def _texts(folder: Path, label: str) -> list[str]:
    """The texts of every `<label>*.tsv` in a folder and its subfolders (the reading sets, `sets/*/`):
    one `category<TAB>text` a line."""
    texts = []
    for path in sorted(folder.rglob(f"{label}*.tsv")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                _category, tab, text = line.partition("\t")
                if not tab or not text.strip():
                    raise FlowError(f"{path}:{number}: expected category<TAB>text")
                texts.append(text)
    return texts


def phrase_library(directory: Path, cache: Path | None = None) -> PhraseLibrary:
    """One compiled library per folder and version of its files: building one trains the
    classifier, which every app and worker in a process can share (it is read-only)."""
    stamp = tuple((str(p), p.stat().st_mtime_ns) for p in sorted(directory.rglob("*")) if p.is_file())
    return _library(directory, stamp, cache)


@lru_cache(maxsize=4)
def _library(directory: Path, stamp: tuple[tuple[str, int], ...], cache: Path | None) -> PhraseLibrary:
    return PhraseLibrary(directory, cache)


def check_numbered_reading(phrases: PhraseLibrary, flows: FlowLibrary) -> None:
    """The phrase files' reading of a questionnaire answered as a numbered list must name the
    instruments' own risk items and their scale's words: if an instrument gains or moves a risk item,
    the assistant refuses to start until the phrase files say the same (FlowError naming both)."""
    risky = [instrument for instrument in flows.instruments.values() if instrument.risk_items]
    items = {item for instrument in risky for item in instrument.risk_items}
    for locale, found in phrases.by_locale.items():
        numbered = found.numbered
        source = f"{phrases.directory / locale}: [numbered_answers]"
        where = f"{flows.directory / 'instruments'}"
        if numbered is None:
            if items:
                raise FlowError(f"{source} is missing: {where} has risk items {sorted(items)}")
            continue
        if set(numbered.risk_from) != items:
            raise FlowError(
                f"{source} risk_from names items {sorted(numbered.risk_from)}, "
                f"but the risk items in {where} are {sorted(items)}"
            )
        if numbered.in_order and not any(len(instrument.items) == numbered.in_order for instrument in risky):
            counts = sorted(len(instrument.items) for instrument in risky)
            raise FlowError(f"{source} in_order {numbered.in_order} is no risk instrument's item count {counts}")
        if any(value != 1 for value in numbered.risk_from.values()):
            raise FlowError(f"{source} risk_from: on a risk item every answer above 'not at all' (1 and up) is risk")
        for instrument in risky:
            labels = [str(label).lower() for label in flows.scales.get(instrument.scale, {}).get("labels", [])]
            words = numbered.scale_words
            starts = len(words) == len(labels) and all(map(str.startswith, labels, words))
            if not starts:
                raise FlowError(
                    f"{source} scale_words {list(words)} are not the starts of {instrument.id}'s "
                    f"'{instrument.scale}' labels {labels} in {where}/scales.toml"
                )
