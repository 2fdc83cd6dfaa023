"""Events the engine emits. Plain data: the caller decides what each one means for IO."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Say:
    """Send the participant the message with this key, rendered with these variables."""

    key: str
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordAnswer:
    """Keep an answer to a question. `value` is the matched choice, "free_text" or "no_reply"."""

    question: str
    value: str
    raw: str | None


@dataclass(frozen=True)
class RaiseFlag:
    """Tell the participant's specialist something needs a person."""

    kind: str
    severity: str
    reason: str


@dataclass(frozen=True)
class Wait:
    """Wait for a reply to `question` until `until`; then the flow times out."""

    question: str
    until: datetime


@dataclass(frozen=True)
class Ended:
    reason: str


Event = Say | RecordAnswer | RaiseFlag | Wait | Ended
