"""Questionnaires (PHQ-9, GAD-7, WSAS, ...) as data, turned into flows, and scored.

One generic flow asks any list of instruments: a discreet introduction that asks
first, then one item per message with the validated wording, a re-prompt with the
scale after an answer that fits nothing, SKIP to skip. A risk item answered 1 or
more sends crisis signposting and raises an urgent flag at once; the questions then
go on unless the participant stops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .flow import Flow, FlowError, load_flow

SKIP_WORDS = ["skip", "pass", "skip it", "skip this one", "next"]
FREQUENCY_CASENESS = {"phq9": 10, "gad7": 8}


@dataclass(frozen=True)
class Instrument:
    id: str
    version: int
    name: str
    stem: str
    scale: str
    items: tuple[str, ...]
    bands: tuple[tuple[int, str], ...]
    risk_items: tuple[int, ...]
    not_applicable_items: tuple[int, ...]
    caseness: int | None
    reliable_change: int | None
    attribution: str

    @property
    def max_total(self) -> int:
        return self.bands[-1][0]


def load_instrument(data: Mapping[str, Any], source: str) -> Instrument:
    for key in ("id", "version", "stem", "scale", "items", "bands"):
        if key not in data:
            raise FlowError(f"{source}: missing {key!r}")
    if not str(data["id"]).isalnum():
        raise FlowError(f"{source}: an instrument id is letters and digits only")
    items = tuple(str(i) for i in data["items"])
    if not items:
        raise FlowError(f"{source}: no items")
    bands = tuple((int(b["upto"]), str(b["label"])) for b in data["bands"])
    if [b[0] for b in bands] != sorted(b[0] for b in bands):
        raise FlowError(f"{source}: bands must rise")
    for item in (*data.get("risk_items", []), *data.get("not_applicable_items", [])):
        if not 1 <= int(item) <= len(items):
            raise FlowError(f"{source}: item {item} does not exist")
    return Instrument(
        id=str(data["id"]),
        version=int(data["version"]),
        name=str(data.get("name", data["id"])),
        stem=str(data["stem"]),
        scale=str(data["scale"]),
        items=items,
        bands=bands,
        risk_items=tuple(int(i) for i in data.get("risk_items", [])),
        not_applicable_items=tuple(int(i) for i in data.get("not_applicable_items", [])),
        caseness=data.get("caseness"),
        reliable_change=data.get("reliable_change"),
        attribution=str(data.get("attribution", "")),
    )


def questionnaire_flow(
    instruments: Sequence[Instrument], scales: Mapping[str, Any], *, source: str = "<instruments>"
) -> Flow:
    """One flow asking every item of these instruments in turn."""
    flow_id = "questionnaire_" + "_".join(i.id for i in instruments)
    nodes: dict[str, Any] = {}
    steps = [(inst, n) for inst in instruments for n in range(1, len(inst.items) + 1)]
    total = len(steps)
    names = [f"{inst.id}_{n}" for inst, n in steps]
    nodes["intro"] = {
        "say": "questionnaire/intro",
        "vars": {"count": total},
        "ask": {
            "question": "start",
            "wait": "7d",
            "wait_at_most_until": "expires_at",
            "on_other": "not_now",
            "on_timeout": "expired",
            "choices": [
                {
                    "value": "yes",
                    "match": ["yes", "y", "yeah", "yep", "ok", "okay", "sure", "go", "go on", "start", "1"],
                    "next": names[0],
                },
                {"value": "no", "match": ["no", "n", "later", "not now", "no thanks", "2"], "next": "not_now"},
            ],
        },
    }
    for index, (inst, number) in enumerate(steps):
        scale = scales.get(inst.scale)
        if scale is None:
            raise FlowError(f"{source}: {inst.id} uses unknown scale {inst.scale!r}")
        after = names[index + 1] if index + 1 < total else "thanks"
        choices: list[dict[str, Any]] = []
        for value in range(0, int(scale["max"]) + 1):
            target = f"{names[index]}_risk" if number in inst.risk_items and value >= 1 else after
            choices.append({"value": str(value), "match": list(scale[str(value)]), "next": target})
        if number in inst.not_applicable_items:
            choices.append({"value": "not_applicable", "match": list(scale["not_applicable"]), "next": after})
        choices.append({"value": "skipped", "match": SKIP_WORDS, "next": after})
        nodes[names[index]] = {
            "say": "questionnaire/item",
            "vars": {
                "instrument": inst.id,
                "number": index + 1,
                "total": total,
                "item": inst.items[number - 1],
                "stem": inst.stem if number == 1 else "",
                "hint": scale["hint"],
                "allows_not_applicable": number in inst.not_applicable_items,
            },
            "ask": {
                "question": names[index],
                "wait": "7d",
                "wait_at_most_until": "expires_at",
                "reprompt": "questionnaire/reprompt",
                "on_other": after,
                "on_timeout": "expired",
                "choices": choices,
            },
        }
        if number in inst.risk_items:
            nodes[f"{names[index]}_risk"] = {
                "say": "common/crisis",
                "flag": {
                    "kind": "crisis",
                    "severity": "urgent",
                    "reason": "Reported thoughts of self-harm in a questionnaire: please contact them today",
                },
                # The questions go on unless they stop: the flag and the signposting are already out.
                "next": after,
            }
    nodes["thanks"] = {"say": "questionnaire/thanks", "end_reason": "completed"}
    nodes["not_now"] = {"say": "questionnaire/not_now", "end_reason": "declined"}
    nodes["expired"] = {"end_reason": "expired"}
    return load_flow(
        {"id": flow_id, "version": sum(i.version for i in instruments), "start": "intro", "nodes": nodes},
        source=source,
    )


@dataclass(frozen=True)
class Score:
    instrument: str
    complete: bool
    total: int | None
    band: str | None
    items: dict[int, str | None]


def score(instrument: Instrument, answers: Mapping[int, str | None]) -> Score:
    """Total and band only when every item has a scored answer (WSAS: not-applicable work is left out)."""
    items = {n: answers.get(n) for n in range(1, len(instrument.items) + 1)}
    values: list[int] = []
    complete = True
    for number, value in items.items():
        if value == "not_applicable" and number in instrument.not_applicable_items:
            continue
        if value is None or not value.isdigit():
            complete = False
            continue
        values.append(int(value))
    if not complete:
        return Score(instrument.id, False, None, None, items)
    total = sum(values)
    band = next(label for upto, label in instrument.bands if total <= upto)
    return Score(instrument.id, True, total, band, items)


@dataclass(frozen=True)
class Trajectory:
    first: dict[str, int]
    latest: dict[str, int]
    caseness_first: bool
    caseness_latest: bool
    recovery: bool
    reliable_improvement: bool
    reliable_deterioration: bool
    reliable_recovery: bool


RELIABLE_CHANGE = {"phq9": 6, "gad7": 4}


def trajectory(first: Mapping[str, int], latest: Mapping[str, int]) -> Trajectory | None:
    """Talking Therapies outcome definitions, on the PHQ-9 and GAD-7 scores present at both times."""
    scales = [s for s in ("phq9", "gad7") if s in first and s in latest]
    if not scales:
        return None

    def at_caseness(scores: Mapping[str, int]) -> bool:
        return any(scores[s] >= FREQUENCY_CASENESS[s] for s in scales)

    change = {s: latest[s] - first[s] for s in scales}
    down = any(-change[s] >= RELIABLE_CHANGE[s] for s in scales)
    up = any(change[s] >= RELIABLE_CHANGE[s] for s in scales)
    caseness_first, caseness_latest = at_caseness(first), at_caseness(latest)
    recovery = caseness_first and not caseness_latest
    improvement = down and not up
    return Trajectory(
        first={s: first[s] for s in scales},
        latest={s: latest[s] for s in scales},
        caseness_first=caseness_first,
        caseness_latest=caseness_latest,
        recovery=recovery,
        reliable_improvement=improvement,
        reliable_deterioration=up,
        reliable_recovery=recovery and improvement,
    )
