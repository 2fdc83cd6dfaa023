"""Conversations by text: flow sessions, messages and their receipts, answers, requests and private pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from assistant.db.models.columns import json_column, utc_column
from assistant.db.models.statuses import SessionStatus


class FlowSession(SQLModel, table=True):
    """One run of a flow for one participant. While waiting, it is also a due row (wait_until)."""

    # The session waiting for a person's text, without reading every session they ever had; and the
    # waits that have run out, in order, without reading every session still waiting.
    __table_args__ = (
        sa.Index("ix_flowsession_participant_status", "participant_id", "status"),
        sa.Index("ix_flowsession_status_wait", "status", "wait_until"),
    )
    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id")  # (indexed first in the indexes above)
    flow: str = Field(max_length=64)
    flow_version: int
    status: str = Field(default=SessionStatus.WAITING, max_length=16)
    state: dict[str, Any] = json_column()
    question: str | None = Field(default=None, max_length=64)
    wait_until: datetime | None = utc_column()  # (second in ix_flowsession_status_wait: waits are looked for by status)
    # Bumped on every change, so work planned against an older version is skipped.
    version: int = 1
    # A wait whose timeout failed to run is tried again later; the error stays on the row.
    timeout_attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    last_error: str | None = Field(default=None, max_length=500)
    started_at: datetime | None = utc_column()
    ended_at: datetime | None = utc_column()
    end_reason: str | None = Field(default=None, max_length=64)


class Message(SQLModel, table=True):
    """Every SMS in and out. Outbound rows are also the outbox."""

    # A phone's texts still queued or sending (the sender keeps each person's texts in order),
    # without reading every text that phone ever had.
    __table_args__ = (sa.Index("ix_message_phone_status", "phone", "status"),)
    id: int | None = Field(default=None, primary_key=True)
    participant_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    direction: str = Field(max_length=3)  # "in" or "out"
    body: str
    at: datetime | None = utc_column(index=True)
    status: str = Field(max_length=16, index=True)  # a MessageStatus
    flow: str | None = Field(default=None, max_length=64)
    message_key: str | None = Field(default=None, max_length=128)
    session_id: int | None = Field(default=None, foreign_key="flowsession.id")
    phone: str = Field(max_length=40)  # the participant's side (indexed first in ix_message_phone_status)
    provider_sid: str | None = Field(default=None, max_length=64, index=True)
    error_code: str | None = Field(default=None, max_length=16)
    error_message: str | None = Field(default=None, max_length=300)
    attempts: int = 0
    next_attempt_at: datetime | None = utc_column()  # (due texts are found by status, then this)
    claimed_at: datetime | None = utc_column()
    sent_at: datetime | None = utc_column()
    expires_at: datetime | None = utc_column()
    segments: int = 1
    # Sent by the schedule (not a direct reply): quiet hours and holidays apply.
    automated: bool = False


class InboundReceipt(SQLModel, table=True):
    """Twilio MessageSids already handled: a retried webhook is acknowledged and ignored."""

    message_sid: str = Field(primary_key=True, max_length=64)
    received_at: datetime | None = utc_column()


class StatusEvent(SQLModel, table=True):
    """Every delivery status callback, kept so late or early ones can be applied in any order."""

    id: int | None = Field(default=None, primary_key=True)
    provider_sid: str = Field(max_length=64, index=True)
    status: str = Field(max_length=16)  # as the provider sent it
    error_code: str | None = Field(default=None, max_length=16)
    received_at: datetime | None = utc_column()
    applied: bool = False


class Answer(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    session_id: int | None = Field(default=None, foreign_key="flowsession.id")
    message_id: int | None = Field(default=None, foreign_key="message.id")
    flow: str = Field(max_length=64)
    question: str = Field(max_length=64)
    value: str = Field(max_length=64)
    raw: str | None = None
    at: datetime | None = utc_column()
    late: bool = False


class ContactRequest(SQLModel, table=True):
    """A change to their own contact a participant asked for by text (pause, less, more, another
    day or time, a new number): what was asked, what came of it, and when. The specialist sees these."""

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    kind: str = Field(max_length=16)  # pause, less, more, day_time, new_number
    status: str = Field(max_length=16, index=True)  # a RequestStatus
    detail: dict[str, Any] = json_column()
    # A new number waits for the code texted to it: only a hash is kept, and the tries.
    code_hash: str | None = Field(default=None, max_length=64)
    tries: int = 0
    created_at: datetime | None = utc_column(nullable=False)
    expires_at: datetime | None = utc_column()
    done_at: datetime | None = utc_column()


class QuestionnaireLink(SQLModel, table=True):
    """A private page for one sitting of a questionnaire. The text holds only a random token; this
    row keeps its SHA-256 hash, never the token. It shows nothing once the sitting ends or expires."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, max_length=64)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    session_id: int = Field(foreign_key="flowsession.id", index=True)
    created_at: datetime | None = utc_column(nullable=False)
    expires_at: datetime | None = utc_column(nullable=False)
    ended_at: datetime | None = utc_column()
    end_reason: str | None = Field(default=None, max_length=32)
