"""What a flow's answers and endings change beyond the session, declared by name in the flow
(`on_answer` on a question, `on_end` on the flow) and resolved here.

The effects live with what they change (appointments, rules, measures), in packages above this
one: the registry names them by dotted path and imports them when first used, so this package
never imports upward and a flow can only name an effect listed here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

from sqlmodel import Session

from assistant.db.models import FlowSession, Participant
from assistant.engine import Flow, FlowError, RecordAnswer
from assistant.runtime import Runtime

# (db, rt, participant, session row, the answer, now)
AnswerEffect = Callable[[Session, Runtime, Participant, FlowSession, RecordAnswer, datetime], Any]
# (db, rt, participant, session row, flow, now, the status it ended from) -> texts it queued, if any
EndEffect = Callable[[Session, Runtime, Participant, FlowSession, Flow, datetime, str], Any]

ON_ANSWER = {
    "checkin_answered": "assistant.care.rules:checkin_answered",
    "attendance_answered": "assistant.contact.appointments:attendance_answered",
    "sustainment_answered": "assistant.contact.work:sustainment_answered",
}
ON_END = {
    "questionnaire_results": "assistant.contact.questionnaire_links:questionnaire_finished",
}


@cache
def _resolve(path: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    effect: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return effect


def answer_effect(name: str) -> AnswerEffect:
    if name not in ON_ANSWER:
        raise FlowError(f"no answer effect named {name!r} (known: {sorted(ON_ANSWER)})")
    return _resolve(ON_ANSWER[name])


def end_effect(name: str) -> EndEffect:
    if name not in ON_END:
        raise FlowError(f"no end effect named {name!r} (known: {sorted(ON_END)})")
    return _resolve(ON_END[name])
