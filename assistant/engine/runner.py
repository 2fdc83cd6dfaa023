"""Running a flow: start and resume return the new state and the events of one exchange.

The engine never reads the clock, a database or the network: `now` is passed in,
and the state is a JSON-ready dict the caller stores.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from assistant.engine.choices import match_choice
from assistant.engine.events import Ended, Event, RaiseFlag, RecordAnswer, Say, Wait
from assistant.engine.flow import Flow, Node
from assistant.engine.inputs import Input, Interrupt, Reply, Timeout

State = dict[str, Any]

# A guard against a definition that loops through say-nodes forever.
_MAX_STEPS = 50


def start(flow: Flow, context: dict[str, Any], now: datetime, *, at: str | None = None) -> tuple[State, list[Event]]:
    """Begin a run at the flow's start, or at one of its declared `entries`."""
    entry = flow.start if at is None else at
    if entry != flow.start and entry not in flow.entries:
        raise ValueError(f"{flow.source}: {entry!r} is not a node this flow can start at")
    state: State = {
        "flow": flow.id,
        "version": flow.version,
        "node": None,
        "question": None,
        "wait_until": None,
        "reprompts": 0,
        "vars": dict(context),
        "status": "active",
    }
    events: list[Event] = []
    _enter(flow, state, entry, now, events)
    return state, events


def resume(flow: Flow, state: State, given: Input, now: datetime) -> tuple[State, list[Event]]:
    if state.get("status") != "waiting":
        raise ValueError("this flow is not waiting for anything")
    if state.get("flow") != flow.id or state.get("version") != flow.version:
        raise ValueError("state belongs to another flow or version")
    state = dict(state)
    node = flow.nodes[state["node"]]
    assert node.ask is not None
    question = node.ask
    events: list[Event] = []

    if isinstance(given, Timeout):
        events.append(RecordAnswer(question.name, "no_reply", None))
        _go(flow, state, question.on_timeout, now, events, default_reason="no_reply")
    elif isinstance(given, Interrupt):
        events.append(RecordAnswer(question.name, given.answer or given.value, given.raw))
        _finish(state, events, given.value)
    elif isinstance(given, Reply):
        choice = next((c for c in question.choices if c.value == given.choice), None) if given.choice else None
        choice = choice or match_choice(question, given.text)
        if choice is not None:
            events.append(RecordAnswer(question.name, choice.value, given.text))
            _go(flow, state, choice.next, now, events, default_reason="answered")
        elif question.reprompt and state.get("reprompts", 0) < 1:
            state["reprompts"] = state.get("reprompts", 0) + 1
            events.append(Say(question.reprompt, dict(state["vars"]) | dict(node.vars)))
            events.append(Wait(question.name, _parse(state["wait_until"])))
        else:
            events.append(RecordAnswer(question.name, question.other_value, given.text))
            _go(flow, state, question.on_other, now, events, default_reason="answered")
    return state, events


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _go(
    flow: Flow,
    state: State,
    target: str | None,
    now: datetime,
    events: list[Event],
    *,
    default_reason: str,
) -> None:
    if target is None:
        _finish(state, events, default_reason)
    else:
        _enter(flow, state, target, now, events)


def _finish(state: State, events: list[Event], reason: str) -> None:
    state.update(status="ended", node=None, question=None, wait_until=None, end_reason=reason)
    events.append(Ended(reason))


def _enter(flow: Flow, state: State, node_id: str, now: datetime, events: list[Event]) -> None:
    for _ in range(_MAX_STEPS):
        node: Node = flow.nodes[node_id]
        if node.say:
            events.append(Say(node.say, dict(state["vars"]) | dict(node.vars)))
        if node.flag:
            events.append(RaiseFlag(node.flag.kind, node.flag.severity, node.flag.reason))
        if node.ask:
            until = now + node.ask.wait
            cap = state["vars"].get(node.ask.until_var) if node.ask.until_var else None
            if cap:
                until = max(now, min(until, _parse(str(cap))))
            state.update(
                status="waiting",
                node=node.id,
                question=node.ask.name,
                wait_until=until.isoformat(),
                reprompts=0,
            )
            events.append(Wait(node.ask.name, until))
            return
        if node.next is None:
            _finish(state, events, node.end_reason or "completed")
            return
        node_id = node.next
    raise ValueError(f"{flow.source}: flow did not stop after {_MAX_STEPS} steps")
