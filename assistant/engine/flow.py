"""Flow definitions as data, checked when they load.

A flow is a set of named nodes. A node may say a message, raise a flag, and then
either ask a question (wait for a reply, route by the answer) or move on to
`next` (or end when there is none).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from assistant.engine.text import normalise

SEVERITIES = ("urgent", "action", "info")
_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class FlowError(ValueError):
    """A flow definition that cannot run. The message names the file and node."""


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration like 30m, 48h, 2d or 1w: {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@dataclass(frozen=True)
class Flag:
    kind: str
    severity: str
    reason: str


@dataclass(frozen=True)
class Choice:
    value: str
    match: tuple[str, ...]
    next: str | None
    # Signals read in a text that stand for this choice (a cancellation answers a reminder's NO).
    signals: tuple[str, ...] = ()
    # Only a whole reply counts ("no", never "no idea"): for answers that must be unmistakable.
    exact: bool = False
    # Words that, straight after a leading match, make it about something else: the reminder's
    # "no need to ring, see you Thursday" turns down a call, not the appointment.
    not_before: tuple[str, ...] = ()


@dataclass(frozen=True)
class Question:
    name: str
    wait: timedelta
    choices: tuple[Choice, ...]
    on_other: str | None
    on_timeout: str | None
    # Re-prompt once with this message after a reply that fits no choice, before on_other.
    reprompt: str | None = None
    # Never wait past the ISO time in this context variable (e.g. the appointment itself).
    until_var: str | None = None
    # The answer recorded for a reply that fits no choice (and is not re-prompted).
    other_value: str = "free_text"
    # The name of an effect the host applies when this question is answered (see sessions.lifecycle).
    on_answer: str | None = None


@dataclass(frozen=True)
class Node:
    id: str
    say: str | None = None
    flag: Flag | None = None
    ask: Question | None = None
    next: str | None = None
    end_reason: str | None = None
    # Extra variables for this node's message (e.g. a questionnaire item's text).
    vars: Mapping[str, Any] = field(default_factory=dict)

    def exits(self) -> list[str]:
        if self.ask is None:
            return [self.next] if self.next else []
        targets = [c.next for c in self.ask.choices]
        targets += [self.ask.on_other, self.ask.on_timeout]
        return [t for t in targets if t]


@dataclass(frozen=True)
class Flow:
    id: str
    version: int
    start: str
    nodes: Mapping[str, Node]
    source: str = "<memory>"
    description: str = ""
    # Nodes other than `start` that a run may begin at (a questionnaire taken up again part way).
    entries: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    # The name of an effect the host applies when a session of this flow ends.
    on_end: str | None = None

    def message_keys(self) -> set[str]:
        keys = {n.say for n in self.nodes.values() if n.say}
        keys |= {n.ask.reprompt for n in self.nodes.values() if n.ask and n.ask.reprompt}
        return keys


def _choice(raw: Mapping[str, Any], where: str) -> Choice:
    if "value" not in raw:
        raise FlowError(f"{where}: a choice needs a value")
    words = [normalise(str(w)) for w in raw.get("match", [])]
    if not words:
        raise FlowError(f"{where}: choice {raw['value']!r} has nothing to match")
    signals = tuple(str(s) for s in raw.get("signals", []))
    exact = bool(raw.get("exact", False))
    not_before = tuple(normalise(str(w)) for w in raw.get("not_before", []))
    return Choice(
        value=str(raw["value"]),
        match=tuple(words),
        next=raw.get("next"),
        signals=signals,
        exact=exact,
        not_before=not_before,
    )


def _node(node_id: str, raw: Mapping[str, Any], source: str) -> Node:
    where = f"{source}: node {node_id!r}"
    known = {"say", "flag", "ask", "next", "end_reason", "vars"}
    unknown = set(raw) - known
    if unknown:
        raise FlowError(f"{where}: unknown field(s) {sorted(unknown)}")
    flag = None
    if "flag" in raw:
        f = raw["flag"]
        if f.get("severity") not in SEVERITIES:
            raise FlowError(f"{where}: flag severity must be one of {SEVERITIES}")
        flag = Flag(kind=str(f["kind"]), severity=f["severity"], reason=str(f["reason"]))
    ask = None
    if "ask" in raw:
        a = raw["ask"]
        if "question" not in a or "wait" not in a:
            raise FlowError(f"{where}: ask needs a question and a wait")
        try:
            wait = parse_duration(str(a["wait"]))
        except ValueError as exc:
            raise FlowError(f"{where}: {exc}") from None
        if "next" in raw:
            raise FlowError(f"{where}: a node that asks routes by its choices, not next")
        ask = Question(
            name=str(a["question"]),
            wait=wait,
            choices=tuple(_choice(c, where) for c in a.get("choices", [])),
            on_other=a.get("on_other"),
            on_timeout=a.get("on_timeout"),
            reprompt=a.get("reprompt"),
            until_var=a.get("wait_at_most_until"),
            other_value=str(a.get("other_value", "free_text")),
            on_answer=a.get("on_answer"),
        )
    return Node(
        id=node_id,
        say=raw.get("say"),
        flag=flag,
        ask=ask,
        next=raw.get("next"),
        end_reason=raw.get("end_reason"),
        vars=dict(raw.get("vars", {})),
    )


def load_flow(
    data: Mapping[str, Any],
    *,
    source: str = "<memory>",
    message_keys: Iterable[str] | None = None,
) -> Flow:
    """Build a flow from parsed data and check it can run.

    Checks: one start node that exists (and any other entry nodes), every route
    leads to a node, no node is unreachable from the entries, and (when
    `message_keys` is given) every message key exists.
    """
    for required in ("id", "version", "start", "nodes"):
        if required not in data:
            raise FlowError(f"{source}: missing {required!r}")
    raw_nodes = data["nodes"]
    if not isinstance(raw_nodes, Mapping) or not raw_nodes:
        raise FlowError(f"{source}: 'nodes' must be a table of nodes")
    nodes = {nid: _node(nid, raw, source) for nid, raw in raw_nodes.items()}
    start = str(data["start"])
    if start not in nodes:
        raise FlowError(f"{source}: start node {start!r} does not exist")
    entries = tuple(str(e) for e in data.get("entries", []))
    for entry in entries:
        if entry not in nodes:
            raise FlowError(f"{source}: entry node {entry!r} does not exist")
    for node in nodes.values():
        for target in node.exits():
            if target not in nodes:
                raise FlowError(f"{source}: node {node.id!r} routes to missing node {target!r}")
    reached: set[str] = set()
    todo = [start, *entries]
    while todo:
        nid = todo.pop()
        if nid in reached:
            continue
        reached.add(nid)
        todo.extend(nodes[nid].exits())
    unreachable = sorted(set(nodes) - reached)
    if unreachable:
        raise FlowError(f"{source}: node(s) {unreachable} can never be reached")
    flow = Flow(
        id=str(data["id"]),
        version=int(data["version"]),
        start=start,
        nodes=nodes,
        source=source,
        description=str(data.get("description", "")),
        entries=entries,
        extra={k: v for k, v in data.items() if k not in {"id", "version", "start", "nodes", "entries", "on_end"}},
        on_end=data.get("on_end"),
    )
    if message_keys is not None:
        available = set(message_keys)
        for node in nodes.values():
            for key in (node.say, node.ask.reprompt if node.ask else None):
                if key and key not in available:
                    raise FlowError(f"{source}: node {node.id!r} says {key!r}, which has no message")
    return flow
