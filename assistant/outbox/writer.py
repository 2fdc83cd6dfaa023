"""The outbox's one writer: every outbound text is created here, with one set of defaults (how long
it stays valid, its segments, the person's number and the service's nation), and withdrawn here.

What is written is sent after the unit of work commits (see `assistant.sending`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, NotRequired, TypedDict, Unpack

import sqlalchemy as sa
from sqlmodel import Session, col, select

from assistant import engine
from assistant.content.library import CRISIS_FALLBACK, CRISIS_KEY, NEUTRAL_SIGNATURE
from assistant.db.models import Message, MessageStatus, Participant, Specialist, table
from assistant.db.rows import held, insert_row
from assistant.db.service_settings import settings_for
from assistant.db.signers import signer
from assistant.runtime import Runtime

log = logging.getLogger(__name__)

# How long an outbound message stays worth sending if the sender is held up.
REPLY_VALID_FOR = timedelta(hours=6)
PROMPT_VALID_FOR = timedelta(hours=12)
# Messages still worth sending to someone who has just opted back in.
OPT_IN_KEYS = {"common/opted_in"}


def specialist_first_name(specialist: Specialist | None) -> str:
    """The name texts are signed with: the specialist's first name, else one read from their
    email address (sam.jones@ -> Sam), else a neutral 'the team' that gives nothing away."""
    if specialist is None:
        return NEUTRAL_SIGNATURE
    return _signature(specialist.name, specialist.email)


def _signature(name: str, email: str) -> str:
    if name.strip():
        return name.strip().split()[0]
    local = email.split("@", 1)[0].replace("_", ".").split(".")[0]
    return local.capitalize() if local.isalpha() and len(local) > 1 else NEUTRAL_SIGNATURE


def _specialist_name(db: Session, specialist_id: int | None) -> str:
    if specialist_id is None:
        return NEUTRAL_SIGNATURE
    found = signer(db, specialist_id)  # read once per transaction, usually with the participant's lock
    if found is None or found.left:  # someone who has left is never named as the one who will be in touch
        return NEUTRAL_SIGNATURE
    loaded = held(db, Specialist, specialist_id)
    if loaded is not None:  # this session's copy, perhaps changed and not yet flushed
        return specialist_first_name(loaded)
    return _signature(found.name, found.email)


def participant_vars(db: Session, participant: Participant) -> dict[str, Any]:
    return {
        "first_name": participant.first_name,
        "specialist_name": _specialist_name(db, participant.specialist_id),
    }


def queue_sms(
    db: Session,
    rt: Runtime,
    participant: Participant,
    key: str,
    now: datetime,
    *,
    variables: dict[str, Any] | None = None,
    flow: str | None = None,
    session_id: int | None = None,
    valid_for: timedelta = REPLY_VALID_FOR,
    expires_at: datetime | None = None,
    automated: bool = False,
    to: str | None = None,
) -> int:
    """Write one of the catalog's texts to the participant (or to `to`, a number they gave for
    the reply) and return its id."""
    # Every text may name the service's nation: crisis signposting gives that nation's numbers.
    merged = participant_vars(db, participant) | {"nation": settings_for(db, participant).nation} | (variables or {})
    body = render_for(rt, key, merged, participant.language)
    return queue_text(
        db,
        phone=participant.phone if to is None else to,
        body=body,
        key=key,
        now=now,
        participant_id=participant.id,
        valid_for=valid_for,
        expires_at=expires_at,
        flow=flow,
        session_id=session_id,
        automated=automated,
    )


class TextFields(TypedDict):
    """What `text_row` makes one text of; those it gives a default to may be left out."""

    phone: str
    body: str
    key: str
    now: datetime
    participant_id: NotRequired[int | None]
    valid_for: NotRequired[timedelta]
    automated: NotRequired[bool]


_MESSAGES = table(Message)


def queue_text(
    db: Session,
    *,
    expires_at: datetime | None = None,
    flow: str | None = None,
    session_id: int | None = None,
    **text: Unpack[TextFields],
) -> int:
    """Write one text to the outbox, with the same defaults for every text: queued now, worth
    sending for `valid_for`, its segments counted. Used as it is for words already written (a
    specialist's one-off text, a duty contact's alert, a reply to a number we do not know).
    Returns its id.

    One INSERT, not an object added and flushed (six times the cost, for a row nothing in the
    unit of work reads back as an object): a text is written for nearly every one received."""
    row = text_row(**text) | {"flow": flow, "session_id": session_id}
    if expires_at is not None:
        row["expires_at"] = expires_at
    return int(insert_row(db, _MESSAGES, row))


def text_row(
    *,
    phone: str,
    body: str,
    key: str,
    now: datetime,
    participant_id: int | None = None,
    valid_for: timedelta = REPLY_VALID_FOR,
    automated: bool = False,
) -> dict[str, Any]:
    """One text as a row for `queue_many`, with the same defaults as `queue_text`."""
    return {
        "participant_id": participant_id,
        "direction": "out",
        "body": body,
        "at": now,
        "status": "queued",
        "message_key": key,
        "phone": phone,
        "next_attempt_at": now,
        "expires_at": now + valid_for,
        "segments": engine.segment_count(body),
        "automated": automated,
        "attempts": 0,
    }


# PostgreSQL: n fresh ids from the texts' own sequence. A many-row INSERT ... RETURNING is one
# statement as long as the batch, which the driver parses afresh every time (over half of
# queueing a campaign); with the ids known, the rows go as one pipelined, prepared executemany.
_NEXT_IDS = sa.select(sa.func.nextval(sa.func.pg_get_serial_sequence("message", "id"))).select_from(
    sa.func.generate_series(1, sa.bindparam("n", type_=sa.Integer))
)


def queue_many(db: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Write a batch of texts (from `text_row`) and return their ids, in order."""
    if db.get_bind().dialect.name == "sqlite":
        # SQLite cannot return ids of a many-row insert in order; but the caller's transaction holds
        # the database's write lock (BEGIN IMMEDIATE), so the next ids are ours to give.
        first = int(db.execute(sa.select(sa.func.coalesce(sa.func.max(_MESSAGES.c.id), 0))).scalar_one()) + 1
        ids = list(range(first, first + len(rows)))
    else:
        ids = list(db.execute(_NEXT_IDS, {"n": len(rows)}).scalars().all())
    db.execute(_MESSAGES.insert(), [{**row, "id": id_} for row, id_ in zip(rows, ids, strict=True)])
    return ids


def render_for(rt: Runtime, key: str, variables: dict[str, Any], locale: str) -> str:
    """The text of one message. The crisis signposting always has a text: if its template cannot be
    rendered for any reason, the fixed one in the code goes instead."""
    if key != CRISIS_KEY:
        return rt.catalog.render(key, variables, locale)
    try:
        return rt.catalog.render(key, variables, locale)
    except Exception as exc:
        log.error("%s failed to render (%s): the fixed signposting text is sent", key, type(exc).__name__)
        return CRISIS_FALLBACK


_WITHDRAW_CHUNK = 1000  # message ids named in one statement when withdrawing given texts


def withdraw_outbox(
    db: Session,
    participant_id: int | None = None,
    *,
    reason: str,
    message_ids: Collection[int] | None = None,
    session_ids: Collection[int] | None = None,
    automated_only: bool = False,
    sparing: Collection[str] = (),
) -> int:
    """Cancel everything still waiting to go to this participant; or, given `message_ids`, only
    those of these texts still waiting (a cancelled campaign's, whoever they are for); given
    `session_ids`, only the texts of these flow sessions (a moved appointment's reminders).
    `automated_only` leaves the texts a person wrote waiting; texts with a key in `sparing` stay too
    (the crisis signposting, where whoever has the phone should still have it)."""
    if participant_id is None and message_ids is None and session_ids is None:
        raise ValueError("say whose texts to withdraw, or which")
    waiting = select(Message).where(Message.direction == "out", Message.status == MessageStatus.QUEUED)
    if sparing:
        waiting = waiting.where(sa.or_(col(Message.message_key).is_(None), col(Message.message_key).not_in(sparing)))
    if participant_id is not None:
        waiting = waiting.where(Message.participant_id == participant_id)
    if session_ids is not None:
        waiting = waiting.where(col(Message.session_id).in_(sorted(set(session_ids))))
    if automated_only:
        waiting = waiting.where(col(Message.automated).is_(True))
    if message_ids is None:
        return _cancel(db, db.exec(waiting).all(), reason)
    ids = sorted(set(message_ids))
    return sum(
        _cancel(db, db.exec(waiting.where(col(Message.id).in_(ids[at : at + _WITHDRAW_CHUNK]))).all(), reason)
        for at in range(0, len(ids), _WITHDRAW_CHUNK)
    )


def _cancel(db: Session, rows: Sequence[Message], reason: str) -> int:
    for row in rows:
        row.status = MessageStatus.CANCELLED
        row.error_message = reason
        db.add(row)
    return len(rows)
