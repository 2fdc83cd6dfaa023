"""The flow engine: pure functions over flow definitions and JSON-ready state.

Standard library and typing only. No clock, database, network or web framework.
"""

from .events import Ended, Event, RaiseFlag, RecordAnswer, Say, Wait
from .flow import Flow, FlowError, load_flow, parse_duration
from .inputs import Input, Interrupt, Reply, Timeout
from .questionnaire import (
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
from .runner import State, match_choice, resume, start
from .sms import is_gsm7, segment_count
from .text import keyword, normalise

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
    "score",
    "segment_count",
    "start",
    "trajectory",
]
