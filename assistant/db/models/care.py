"""What staff see and act on: appointments, questionnaire results, flags and their email, logs and tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from assistant.db.models.columns import json_column, utc_column
from assistant.db.models.statuses import FlagStatus, NotificationStatus, SilenceNote, StaffTaskStatus


class Appointment(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("participant_id", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    external_id: str = Field(max_length=64)
    starts_at: datetime | None = utc_column(nullable=False, index=True)
    duration_minutes: int = 60
    kind: str = Field(max_length=32)
    location: str = Field(default="", max_length=300)
    with_whom: str = Field(default="", max_length=200)
    outcome: str | None = Field(default=None, max_length=32)
    outcome_at: datetime | None = utc_column()
    confirmed_at: datetime | None = utc_column()
    cancellation_requested_at: datetime | None = utc_column()
    # Bumped whenever the time or status changes: reminders planned for an older version are skipped.
    version: int = 1
    created_at: datetime | None = utc_column()
    updated_at: datetime | None = utc_column()


class Measure(SQLModel, table=True):
    """One questionnaire result: scored only when complete; partial ones are kept as partial."""

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    session_id: int | None = Field(default=None, foreign_key="flowsession.id")
    instrument: str = Field(max_length=16, index=True)
    status: str = Field(max_length=16)  # a MeasureStatus
    total: int | None = None
    band: str | None = Field(default=None, max_length=64)
    items: dict[str, Any] = json_column()
    started_at: datetime | None = utc_column()
    completed_at: datetime | None = utc_column()


class Flag(SQLModel, table=True):
    # A person's open flag of one kind, asked on every text: found without reading all their flags.
    # And the open flags due a reminder, without reading every open flag ever raised. And whether a
    # person has an open flag that holds their routine texts, from their flags alone.
    __table_args__ = (
        sa.Index("ix_flag_participant_kind", "participant_id", "kind"),
        sa.Index("ix_flag_status_notice", "status", "next_notice_at"),
        sa.Index("ix_flag_participant_status", "participant_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id")  # (indexed first in the indexes above)
    specialist_id: int = Field(foreign_key="specialist.id", index=True)
    kind: str = Field(max_length=64)
    severity: str = Field(max_length=16)
    reason: str
    status: str = Field(default=FlagStatus.OPEN, max_length=16)
    evidence: list[Any] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    created_at: datetime | None = utc_column()
    updated_at: datetime | None = utc_column()
    acknowledged_at: datetime | None = utc_column()
    acknowledged_by: str | None = Field(default=None, max_length=254)
    resolved_at: datetime | None = utc_column()
    resolved_by: str | None = Field(default=None, max_length=254)
    note: str | None = None
    # Urgent flags are the schedule of their own reminders: people are told again at next_notice_at
    # until someone acknowledges (then it is None). notices counts those sent since the flag was
    # raised or last acknowledged; last_notice_at is when the latest went.
    next_notice_at: datetime | None = utc_column(index=True)
    last_notice_at: datetime | None = utc_column()
    notices: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class Notification(SQLModel, table=True):
    """An email to a person about a flag: an outbox like the SMS one, sent after commit."""

    id: int | None = Field(default=None, primary_key=True)
    flag_id: int | None = Field(default=None, foreign_key="flag.id", index=True)
    to_email: str = Field(max_length=254)
    subject: str = Field(max_length=200)
    body: str
    status: str = Field(default=NotificationStatus.QUEUED, max_length=16, index=True)
    attempts: int = 0
    next_attempt_at: datetime | None = utc_column(index=True)
    created_at: datetime | None = utc_column()
    sent_at: datetime | None = utc_column()
    error: str | None = Field(default=None, max_length=300)


class ContactLog(SQLModel, table=True):
    """A contact the specialist made outside the assistant (a call, a meeting): evidence too."""

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    at: datetime | None = utc_column(nullable=False, index=True)
    channel: str = Field(max_length=16)
    note: str = Field(default="", max_length=2000)
    logged_by: str = Field(max_length=254)
    logged_at: datetime | None = utc_column()
    # reached, not_reached (no answer, message left), sent (a letter, an email, a text); None: not said.
    outcome: str | None = Field(default=None, max_length=16)
    # An attempt the assistant made itself (a follow-up text): evidence of trying, not of contact.
    automated: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})


class StaffTask(SQLModel, table=True):
    """Something for the specialist to do by hand (a call, an email, a letter), on their Today list
    from its due time until they log it done. Done or not, the software never ends support."""

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    kind: str = Field(max_length=16)  # call, email, letter
    reason: str = Field(max_length=300)
    source: str = Field(max_length=32)  # dna_followup
    payload: dict[str, Any] = json_column()
    due_at: datetime | None = utc_column(nullable=False, index=True)
    status: str = Field(default=StaffTaskStatus.OPEN, max_length=16, index=True)
    created_at: datetime | None = utc_column()
    done_at: datetime | None = utc_column()
    done_by: str | None = Field(default=None, max_length=254)
    contact_log_id: int | None = Field(default=None, foreign_key="contactlog.id")


class ReplyRhythm(SQLModel, table=True):
    """How one participant usually answers, kept up to date per text: a few numbers a specialist
    could read (see engine/rhythm.py), never a history scan."""

    participant_id: int = Field(foreign_key="participant.id", primary_key=True)
    asks: int = 0  # check-ins (and gentle follow-ups) sent
    answered: int = 0  # of those, answered by a text before the next one
    log_hours_sum: float = 0.0  # sum and sum of squares of ln(hours to reply), over answered asks
    log_hours_sq: float = 0.0
    pending: int = 0  # asks since their last text
    first_pending_at: datetime | None = utc_column()
    last_ask_at: datetime | None = utc_column(index=True)
    # What was done about the silence under way.
    noted: str = Field(default=SilenceNote.NOTHING_YET, max_length=16)
    # When the clock next needs to judge the silence under way (None: none under way, or it was told of).
    look_at: datetime | None = utc_column(index=True)
