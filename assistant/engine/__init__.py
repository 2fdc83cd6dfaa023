"""The flow engine: pure functions over flow definitions and JSON-ready state.

It may import the standard library only: no clock, database, network or web framework.
"""

from assistant.engine.choices import match_choice
from assistant.engine.events import Ended, Event, RaiseFlag, RecordAnswer, Say, Wait
from assistant.engine.flow import Flow, FlowError, load_flow, parse_duration
from assistant.engine.inputs import Input, Interrupt, Reply, Timeout
from assistant.engine.questionnaire import (
    BY_LINK,
    PAUSED_FOR_SAFETY,
    UNCLEAR,
    Instrument,
    Score,
    Trajectory,
    load_instrument,
    page_entry,
    questionnaire_flow,
    resume_entry,
    score,
    trajectory,
)
from assistant.engine.runner import State, resume, start
from assistant.engine.sms import is_gsm7, segment_count
from assistant.engine.text import keyword, normalise, says_only

__all__ = [
    "BY_LINK",
    "PAUSED_FOR_SAFETY",
    "UNCLEAR",
    "Ended",
    "Event",
    "Flow",
    "FlowError",
    "Input",
    "Instrument",
    "Interrupt",
    "RaiseFlag",
    "RecordAnswer",
    "Reply",
    "Say",
    "Score",
    "State",
    "Timeout",
    "Trajectory",
    "Wait",
    "is_gsm7",
    "keyword",
    "load_flow",
    "load_instrument",
    "match_choice",
    "normalise",
    "page_entry",
    "parse_duration",
    "questionnaire_flow",
    "resume",
    "resume_entry",
    "says_only",
    "score",
    "segment_count",
    "start",
    "trajectory",
]
