"""The flow engine: pure functions over flow definitions and JSON-ready state.

Standard library and typing only. No clock, database, network or web framework.
"""

from .events import Ended, Event, RaiseFlag, RecordAnswer, Say, Wait
from .flow import Flow, FlowError, load_flow, parse_duration
from .inputs import Input, Interrupt, Reply, Timeout
from .runner import State, match_choice, resume, start
from .sms import is_gsm7, segment_count
from .text import keyword, normalise

__all__ = [
    "Ended",
    "Event",
    "Flow",
    "FlowError",
    "Input",
    "Interrupt",
    "RaiseFlag",
    "RecordAnswer",
    "Reply",
    "Say",
    "State",
    "Timeout",
    "Wait",
    "is_gsm7",
    "keyword",
    "load_flow",
    "match_choice",
    "normalise",
    "parse_duration",
    "resume",
    "segment_count",
    "start",
]
