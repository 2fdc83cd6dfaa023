"""Questionnaires (PHQ-9, GAD-7, WSAS, ...) as data, turned into flows, and scored.

One generic flow asks any list of instruments: a discreet introduction that asks
first, then one item per message with the validated wording, a re-prompt with the
scale after an answer that fits nothing, SKIP to skip.

A risk item (PHQ-9 item 9) is read for recall first. Only a clear "not at all"
(the scale's `risk_zero` words, as the whole reply) goes on to the next item. Any
other answer, in digits or in words, and any reply that fits nothing (recorded as
"unclear", never as a number) sends crisis signposting and raises an urgent flag
at once, with no re-prompt; the questions then pause with a kind message, and the
sitting ends as "paused_for_safety". SKIP on a risk item raises an action flag so a
person asks, and the questions go on.

Items whose wording would give something away on a lock screen are only texted after the
participant says so: the invitation to such a questionnaire (`offer_link`) says the questions
are personal, and offers a private web page instead (LINK ends the run as "by_link", and the
caller sends the link). A sitting on that page begins at `page_<item>`: the item an invitation
would lead to, without the invitation.

A paused sitting can be taken up again: each item after a risk item is also an
entry to the flow, through an invitation for just the questions left
(`resume_entry`). The caller starts the new run there and scores the runs'
answers together; an instrument gets a total only once all its items have one.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assistant.engine.flow import Flow, FlowError, load_flow

SKIP_WORDS = ["skip", "pass", "skip it", "skip this one", "next"]
FREQUENCY_CASENESS = {"phq9": 10, "gad7": 8}
PAUSED_FOR_SAFETY = "paused_for_safety"
UNCLEAR = "unclear"
INVITATION_YES = ["yes", "y", "yeah", "yep", "ok", "okay", "sure", "go", "go on", "start", "1"]
INVITATION_NO = ["no", "n", "later", "not now", "no thanks", "2"]
# Agreeing to the questions' own wording by text, or asking for the private page instead.
INVITATION_TEXT = ["text", "by text", "text me", "texts", "sms", "text is fine", "text is ok"]
INVITATION_LINK = ["link", "the link", "link please", "send link", "send the link", "web", "website", "online", "page"]
BY_LINK = "by_link"
PAGE = "page_"  # the entry before an item where a sitting on the private page begins
RISK_REASON = "Answered more than 'not at all' to the question about thoughts of self-harm: please contact them today"
UNCLEAR_REASON = (
    "Answered the question about thoughts of self-harm with something other than a clear 'not at all': "
    "please contact them today"
)
SKIPPED_REASON = "Skipped the question about thoughts of self-harm: please ask them how they are"


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


def _invitation(first: str, count: int, *, resuming: bool, offer_link: bool) -> dict[str, Any]:
    """The discreet opening that asks first; YES goes to `first`. With `offer_link`, it says the
    questions are personal, so YES is the participant's agreement to their wording by text, and
    LINK asks for the private page instead."""
    choices: list[dict[str, Any]] = [
        {"value": "yes", "match": INVITATION_YES + (INVITATION_TEXT if offer_link else []), "next": first},
        {"value": "no", "match": INVITATION_NO, "next": "not_now"},
    ]
    if offer_link:
        choices.append({"value": "link", "match": INVITATION_LINK, "next": BY_LINK})
    return {
        "say": "questionnaire/intro",
        "vars": {"count": count, "resuming": resuming, "offer_link": offer_link},
        "ask": {
            "question": "start",
            "wait": "7d",
            "wait_at_most_until": "expires_at",
            "on_other": "not_now",
            "on_timeout": "expired",
            "choices": choices,
        },
    }


def questionnaire_flow(
    instruments: Sequence[Instrument],
    scales: Mapping[str, Any],
    *,
    source: str = "<instruments>",
    offer_link: bool = False,
) -> Flow:
    """One flow asking every item of these instruments in turn. `offer_link`: some item's wording
    would give something away on a lock screen (the content's checker decides)."""
    flow_id = "questionnaire_" + "_".join(i.id for i in instruments)
    nodes: dict[str, Any] = {}
    entries: list[str] = []
    steps = [(inst, n) for inst in instruments for n in range(1, len(inst.items) + 1)]
    total = len(steps)
    names = [f"{inst.id}_{n}" for inst, n in steps]
    nodes["intro"] = _invitation(names[0], total, resuming=False, offer_link=offer_link)
    for index, (inst, number) in enumerate(steps):
        scale = scales.get(inst.scale)
        if scale is None:
            raise FlowError(f"{source}: {inst.id} uses unknown scale {inst.scale!r}")
        name = names[index]
        after = names[index + 1] if index + 1 < total else "thanks"
        nodes[name] = _item_node(inst, number, scale, name=name, after=after, index=index, total=total, source=source)
        if number in inst.risk_items:
            nodes.update(_risk_nodes(name, after))
            if after != "thanks":
                nodes["paused"] = {"say": "questionnaire/paused", "end_reason": PAUSED_FOR_SAFETY}
                nodes[f"resume_{after}"] = _invitation(after, total - index - 1, resuming=True, offer_link=offer_link)
                entries.append(f"resume_{after}")
    nodes["thanks"] = {"say": "questionnaire/thanks", "end_reason": "completed"}
    nodes["not_now"] = {"say": "questionnaire/not_now", "end_reason": "declined"}
    nodes["expired"] = {"end_reason": "expired"}
    if offer_link:
        nodes[BY_LINK] = {"end_reason": BY_LINK}
    # A sitting on the private page begins where an invitation's YES would lead, with no invitation.
    for target in [names[0]] + [e.removeprefix("resume_") for e in entries]:
        nodes[f"{PAGE}{target}"] = {"next": target}
        entries.append(f"{PAGE}{target}")
    return load_flow(
        {
            "id": flow_id,
            "version": sum(i.version for i in instruments),
            "start": "intro",
            "entries": entries,
            "items": names,
            "nodes": nodes,
            "on_end": "questionnaire_results",
        },
        source=source,
    )


def _item_choices(
    inst: Instrument, number: int, scale: Mapping[str, Any], *, name: str, after: str, source: str
) -> list[dict[str, Any]]:
    """The answers item `number` accepts and where each leads. On a risk item only a clear "not at
    all" goes on; any other value goes to signposting, SKIP to a flag."""
    risk = number in inst.risk_items
    choices: list[dict[str, Any]] = []
    for value in range(0, int(scale["max"]) + 1):
        if not risk:
            choices.append({"value": str(value), "match": list(scale[str(value)]), "next": after})
        elif value == 0:
            if "risk_zero" not in scale:
                where = f"{source}: {inst.id} item {number}"
                raise FlowError(f"{where} is a risk item, so scale {inst.scale!r} needs a risk_zero list")
            # Only the whole reply, and only words that cannot mean anything else.
            choices.append({"value": "0", "match": list(scale["risk_zero"]), "next": after, "exact": True})
        else:
            choices.append({"value": str(value), "match": list(scale[str(value)]), "next": f"{name}_risk"})
    if number in inst.not_applicable_items:
        choices.append({"value": "not_applicable", "match": list(scale["not_applicable"]), "next": after})
    choices.append({"value": "skipped", "match": SKIP_WORDS, "next": f"{name}_skipped" if risk else after})
    return choices


def _item_node(
    inst: Instrument,
    number: int,
    scale: Mapping[str, Any],
    *,
    name: str,
    after: str,
    index: int,
    total: int,
    source: str,
) -> dict[str, Any]:
    """The node that texts item `number` of `inst` (the `index`th of `total`) and waits for its answer."""
    ask: dict[str, Any] = {
        "question": name,
        "wait": "7d",
        "wait_at_most_until": "expires_at",
        "on_timeout": "expired",
        "choices": _item_choices(inst, number, scale, name=name, after=after, source=source),
    }
    if number in inst.risk_items:  # no re-prompt: an answer that is not clearly "not at all" goes to a person now
        ask |= {"on_other": f"{name}_unclear", "other_value": UNCLEAR}
    else:
        ask |= {"on_other": after, "reprompt": "questionnaire/reprompt"}
    return {
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
        "ask": ask,
    }


def _risk_nodes(name: str, after: str) -> dict[str, Any]:
    """After a risk item: signposting and an urgent flag for a value or an unclear reply, then a
    pause (no next item, to be taken up another time); an action flag for SKIP, then on."""
    pause = "paused" if after != "thanks" else "thanks"
    nodes: dict[str, Any] = {}
    for suffix, reason in (("risk", RISK_REASON), ("unclear", UNCLEAR_REASON)):
        nodes[f"{name}_{suffix}"] = {
            "say": "common/crisis",
            "flag": {"kind": "crisis", "severity": "urgent", "reason": reason},
            "next": pause,
        }
    nodes[f"{name}_skipped"] = {
        "flag": {"kind": "risk_item_skipped", "severity": "action", "reason": SKIPPED_REASON},
        "next": after,
    }
    return nodes


def resume_entry(flow: Flow, answered: Collection[str]) -> str | None:
    """Where a paused sitting of this questionnaire takes up again: the invitation before its
    first item with no recorded answer, if the flow has one there (only items after a risk item do)."""
    first = next((q for q in flow.extra.get("items", ()) if q not in answered), None)
    entry = f"resume_{first}" if first else None
    return entry if entry in flow.entries else None


def page_entry(flow: Flow, resuming: str | None) -> str:
    """Where a sitting on the private page begins: at the item the invitation `resuming` (from
    `resume_entry`) leads to, else at the first item."""
    first = resuming.removeprefix("resume_") if resuming else flow.extra["items"][0]
    return f"{PAGE}{first}"


@dataclass(frozen=True)
class Score:
    instrument: str
    complete: bool
    total: int | None
    band: str | None
    items: dict[int, str | None]
    # Items answered "not applicable" (WSAS work): the total is of the others, partial and not banded.
    not_applicable: tuple[int, ...] = ()


def score(instrument: Instrument, answers: Mapping[int, str | None]) -> Score:
    """Total and band only when every item has a scored answer. An allowed "not applicable" (WSAS
    work) is left out, not scored as 0: the total of the items scored is kept, reported as partial
    and never banded on cut-offs made for the full scale."""
    items = {n: answers.get(n) for n in range(1, len(instrument.items) + 1)}
    values: list[int] = []
    missing = False
    not_applicable: list[int] = []
    for number, value in items.items():
        if value == "not_applicable" and number in instrument.not_applicable_items:
            not_applicable.append(number)
            continue
        if value is None or not value.isdigit():
            missing = True
            continue
        values.append(int(value))
    if missing:
        return Score(instrument.id, False, None, None, items)
    if not_applicable:
        return Score(instrument.id, False, sum(values), None, items, tuple(not_applicable))
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
