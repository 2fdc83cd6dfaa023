"""Turning engine events into records: starting and resuming flows, queueing their texts, and
applying the effects a flow declares by name.

Every function here works inside a transaction it is given and never commits:
the caller owns the unit of work. Outbound messages are only written to the
outbox here; they are sent after the transaction commits.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from assistant import engine
from assistant.care.flags import raise_flag
from assistant.db.driver import Prepared
from assistant.db.models import Answer, FlowSession, Message, Participant, SessionStatus, table
from assistant.db.open_items import LAST_ACK, LAST_ENDED, LAST_OUT
from assistant.db.rows import add_now, as_loaded, get_row, insert_row, write_now
from assistant.engine import Ended, Event, Flow, FlowError, RaiseFlag, RecordAnswer, Say, Wait
from assistant.outbox.writer import PROMPT_VALID_FOR, REPLY_VALID_FOR, participant_vars, queue_sms
from assistant.runtime import Runtime

log = logging.getLogger(__name__)

# A reply this soon after a question timed out is kept as a late answer to it.
LATE_ANSWER_WINDOW = timedelta(days=7)
# Free text outside a flow is acknowledged at most this often.
ACK_EVERY = timedelta(hours=12)
# ...and not straight after another reply from us.
QUIET_AFTER_REPLY = timedelta(minutes=30)


@dataclass
class Outcome:
    """What one unit of work put in the outbox, to be sent once it commits."""

    outbox: list[int] = field(default_factory=list)

    def extend(self, other: Outcome) -> None:
        self.outbox.extend(other.outbox)


QUESTIONNAIRE_INVITATION = "start"  # the intro's question in every generated questionnaire


_flow_session = table(FlowSession)
_ACTIVE_SESSION = Prepared(
    sa.select(_flow_session)
    .where(
        _flow_session.c.participant_id == sa.bindparam("participant_id"),
        _flow_session.c.status == SessionStatus.WAITING,
    )
    .order_by(_flow_session.c.id.desc())
    .limit(1)
)


def active_session(db: Session, participant_id: int) -> FlowSession | None:
    row = _ACTIVE_SESSION.run(db, {"participant_id": participant_id}).first()
    return None if row is None else as_loaded(db, FlowSession, row._asdict())


@dataclass
class _Applying:
    """What every event of one `apply_events` call needs."""

    db: Session
    rt: Runtime
    participant: Participant
    row: FlowSession
    flow: Flow
    now: datetime
    inbound: Message | None
    automated: bool
    expires_at: datetime | None
    # The row's columns the events changed, not yet written (see `write_row`).
    row_changes: dict[str, Any] = field(default_factory=dict)

    @property
    def evidence(self) -> dict[str, Any]:
        return {"message_id": self.inbound.id if self.inbound else None, "flow": self.flow.id}

    def write_row(self, **more: Any) -> None:
        """Write the row's changes so far (and `more`): at the end, and before an effect."""
        self.row_changes.update(more)
        if self.row_changes:
            write_now(self.db, self.row, **self.row_changes)
            self.row_changes.clear()

    def before_effect(self) -> None:
        """Everything so far written, the row and the session's other changes: an effect reads them."""
        self.write_row()
        self.db.flush()


def apply_events(
    db: Session,
    rt: Runtime,
    participant: Participant,
    row: FlowSession,
    flow: Flow,
    state: engine.State,
    events: list[Event],
    now: datetime,
    *,
    inbound: Message | None = None,
    automated: bool = False,
    expires_at: datetime | None = None,
) -> Outcome:
    """Turn the engine's events into records: texts in the outbox, answers, flags, the wait, the end."""
    at = _Applying(db, rt, participant, row, flow, now, inbound, automated, expires_at)
    outcome = Outcome()
    for event in events:
        if isinstance(event, Say):
            outcome.outbox.append(_say(at, event))
        elif isinstance(event, RecordAnswer):
            _record_answer(at, event)
        elif isinstance(event, RaiseFlag):
            raise_flag(
                db, participant, kind=event.kind, severity=event.severity, reason=event.reason, now=now,
                evidence=at.evidence,
            )  # fmt: skip
        elif isinstance(event, Wait):
            at.row_changes.update(wait_until=event.until, question=event.question)
        elif isinstance(event, Ended):
            outcome.extend(_end(at, event))
    at.write_row(state=state, version=row.version + 1)
    return outcome


def _say(at: _Applying, event: Say) -> int:
    return queue_sms(
        at.db,
        at.rt,
        at.participant,
        event.key if "/" in event.key else f"{at.flow.id}/{event.key}",
        at.now,
        variables=event.vars,
        flow=at.flow.id,
        session_id=at.row.id,
        valid_for=PROMPT_VALID_FOR if at.inbound is None else REPLY_VALID_FOR,
        expires_at=at.expires_at,
        automated=at.automated and at.inbound is None,
    )


# One INSERT, not an object added and flushed: nothing in the unit of work reads an answer back as one.
_ANSWERS = table(Answer)


def _record_answer(at: _Applying, event: RecordAnswer) -> None:
    assert at.participant.id is not None
    answer = {
        "participant_id": at.participant.id,
        "session_id": at.row.id,
        "message_id": at.inbound.id if at.inbound else None,
        "flow": at.flow.id,
        "question": event.question,
        "value": event.value,
        "raw": event.raw,
        "at": at.now,
        "late": False,
    }
    insert_row(at.db, _ANSWERS, answer)
    effect = _answer_effect(at.flow, event.question)
    if effect is not None:
        at.before_effect()
        answer_effect(effect)(at.db, at.rt, at.participant, at.row, event, at.now)
    if event.value == "free_text":
        raise_flag(
            at.db, at.participant, kind="message", severity="info", reason="Sent a message to read", now=at.now,
            evidence=at.evidence,
        )  # fmt: skip


def end_session(db: Session, row: FlowSession, reason: str, now: datetime) -> str:
    """End a session: the one way a session ends. Returns the status it ended from ("waiting" for
    a text, "on_page" for a private link). The caller bumps the version when it is not applying
    the engine's events, which bump it anyway."""
    ended_from = row.status
    write_now(db, row, **_ended(reason, now))
    return ended_from


def _ended(reason: str, now: datetime) -> dict[str, Any]:
    return {"status": SessionStatus.ENDED, "ended_at": now, "end_reason": reason, "wait_until": None}


def _end(at: _Applying, event: Ended) -> Outcome:
    """End the session (written with the row's other changes) and run the flow's `on_end` effect."""
    ended_from = at.row.status
    at.row_changes.update(_ended(event.reason, at.now))
    if at.flow.on_end is None:
        return Outcome()
    at.before_effect()
    effected = end_effect(at.flow.on_end)(at.db, at.rt, at.participant, at.row, at.flow, at.now, ended_from)
    return effected if isinstance(effected, Outcome) else Outcome()


def _answer_effect(flow: Flow, question: str) -> str | None:
    """The effect the flow declares for answers to `question`, if any."""
    for node in flow.nodes.values():
        if node.ask is not None and node.ask.name == question:
            return node.ask.on_answer
    return None


def questionnaire_under_way(flow: str, question: str | None) -> bool:
    """A questionnaire someone has started answering is never cut short, nor talked over by a
    campaign. An invitation not yet taken up ("Reply YES to start") is not under way: it gives
    way to the routine texts rather than holding them back until it expires."""
    return flow.startswith("questionnaire_") and question != QUESTIONNAIRE_INVITATION


def start_flow(
    db: Session,
    rt: Runtime,
    participant: Participant,
    flow: Flow,
    now: datetime,
    *,
    extra_vars: dict[str, Any] | None = None,
    automated: bool = False,
    expires_at: datetime | None = None,
    at: str | None = None,
) -> Outcome:
    assert participant.id is not None
    context = participant_vars(db, participant) | (extra_vars or {})
    state, events = engine.start(flow, context, now, at=at)
    row = add_now(
        db,
        FlowSession,
        participant_id=participant.id,
        flow=flow.id,
        flow_version=flow.version,
        status=SessionStatus.WAITING,
        state=state,
        started_at=now,
    )
    return apply_events(db, rt, participant, row, flow, state, events, now, automated=automated, expires_at=expires_at)


def start_expiring_flow(
    db: Session, rt: Runtime, participant: Participant, flow: Flow, now: datetime, *, expires_after: timedelta
) -> Outcome:
    """A flow the clock starts on its own (a questionnaire, a campaign's flow): automated, and
    ended as expired if it is still unanswered after `expires_after`.

    A questionnaire paused lately after a risk item is taken up where it stopped: the
    invitation is for the questions left (see measures.paused_sitting)."""
    from assistant.care.measures import RESUMES, paused_sitting

    assert participant.id is not None
    expires = now + expires_after
    extra: dict[str, Any] = {"expires_at": expires.isoformat()}
    at = None
    if flow.id.startswith("questionnaire_") and (paused := paused_sitting(db, participant.id, flow, now)):
        extra[RESUMES], at = paused[0].id, paused[1]
    return start_flow(db, rt, participant, flow, now, extra_vars=extra, automated=True, expires_at=expires, at=at)


def resume_flow(
    db: Session,
    rt: Runtime,
    participant: Participant,
    row: FlowSession,
    given: engine.Input,
    now: datetime,
    *,
    inbound: Message | None = None,
) -> Outcome:
    flow = rt.flows.get(row.flow, row.flow_version)
    if flow is None:
        # The version this session started on is gone: close it rather than guess.
        end_session(db, row, "flow_removed", now)
        return Outcome()
    state, events = engine.resume(flow, row.state, given, now)
    return apply_events(db, rt, participant, row, flow, state, events, now, inbound=inbound)


def late_question(db: Session, participant_id: int, now: datetime) -> FlowSession | None:
    """The last question that timed out recently: a reply now is a late answer to it."""
    last = LAST_ENDED.run(db, {"participant_id": participant_id}).first()
    if last and last.end_reason == "no_reply" and last.ended_at and now - last.ended_at <= LATE_ANSWER_WINDOW:
        return get_row(db, FlowSession, last.id)
    return None


_message = table(Message)
_LAST_ASKED = Prepared(
    sa.select(_message.c.at)
    .where(
        # The person's index finds their few messages; there is none on session_id.
        _message.c.participant_id == sa.bindparam("participant_id"),
        _message.c.session_id == sa.bindparam("session_id"),
        _message.c.direction == "out",
    )
    .order_by(_message.c.id.desc())
    .limit(1)
)


def last_asked(db: Session, waiting: FlowSession) -> datetime | None:
    """When the waiting flow last sent its question (a reply after that is the flow's)."""
    params = {"participant_id": waiting.participant_id, "session_id": waiting.id}
    last: datetime | None = _LAST_ASKED.run(db, params).scalar()
    return last or waiting.started_at


def late_value(rt: Runtime, late: FlowSession, body: str) -> str:
    flow = rt.flows.get(late.flow, late.flow_version)
    for node in flow.nodes.values() if flow else ():
        if node.ask and node.ask.name == late.question:
            choice = engine.match_choice(node.ask, body)
            return choice.value if choice else "free_text"
    return "free_text"


def recently_acknowledged(db: Session, participant_id: int, now: datetime) -> bool:
    """An acknowledgement went out lately, or we replied moments ago: no need for another."""
    params = {"participant_id": participant_id}
    last_ack = LAST_ACK.run(db, params).first()
    if last_ack and last_ack.at and now - last_ack.at < ACK_EVERY:
        return True
    last_out = LAST_OUT.run(db, params).first()
    return bool(
        last_out and last_out.at and last_out.message_key != "common/call_ack" and now - last_out.at < QUIET_AFTER_REPLY
    )


# ---------------------------------------------------------------------------- effects
# What a flow's answers and endings change beyond the session, declared by name in the flow
# (`on_answer` on a question, `on_end` on the flow) and resolved here. The effects live with
# what they change (appointments, rules, measures), in packages above this one: the registry
# names them by dotted path and imports them when first used, so this package never imports
# upward and a flow can only name an effect listed here.

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
