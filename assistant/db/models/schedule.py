"""What the clock works from: due tasks, campaigns and their copies, the sending pace, job health."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from assistant.db.models.columns import json_column, utc_column
from assistant.db.models.statuses import CampaignStatus, RecipientStatus, TaskStatus


class DueTask(SQLModel, table=True):
    """Something to do at a time: the database is the schedule."""

    __table_args__ = (
        # One person's pending rows of a kind, asked on most texts: found without reading their history.
        sa.Index("ix_duetask_participant_status", "participant_id", "status"),
        # The due ones in the order a tick takes them, without sorting every pending row.
        sa.Index("ix_duetask_status_due", "status", "due_at", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id")  # (indexed first in ix_duetask_participant_status)
    kind: str = Field(max_length=32)
    due_at: datetime | None = utc_column(nullable=False, index=True)
    status: str = Field(default=TaskStatus.PENDING, max_length=16)
    payload: dict[str, Any] = json_column()
    created_at: datetime | None = utc_column()
    done_at: datetime | None = utc_column()
    outcome: str | None = Field(default=None, max_length=64)
    # A row whose handling failed is retried later with backoff; the error stays on the row.
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    last_error: str | None = Field(default=None, max_length=500)


class Campaign(SQLModel, table=True):
    """A message (or a flow) a service sends to a group, at a time or relative to a date on each record."""

    id: int | None = Field(default=None, primary_key=True)
    service_id: int = Field(foreign_key="service.id", index=True)
    name: str = Field(max_length=200)
    status: str = Field(default=CampaignStatus.SCHEDULED, max_length=16, index=True)
    text: str = ""  # with {{ merge_fields }}; empty when a flow is started instead
    flow: str | None = Field(default=None, max_length=64)
    audience: dict[str, Any] = json_column()
    send_at: datetime | None = utc_column()
    # Relative to a date on each participant's record, e.g. {"field": "support_end", "days": -28, "at": "10:00"}.
    relative: dict[str, Any] | None = Field(
        default=None, sa_column=sa.Column(sa.JSON(none_as_null=True), nullable=True)
    )
    reply_keyword: str | None = Field(default=None, max_length=32)
    created_by: str = Field(max_length=254)
    created_at: datetime | None = utc_column()
    updated_at: datetime | None = utc_column()


class CampaignRecipient(SQLModel, table=True):
    """One participant's copy of a campaign: the unique pair is why nobody gets it twice."""

    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "participant_id"),
        # The clock claims due copies in this order: the index saves sorting every waiting copy per batch.
        sa.Index("ix_campaignrecipient_claim", "status", "due_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    status: str = Field(default=RecipientStatus.PLANNED, max_length=16, index=True)
    due_at: datetime | None = utc_column(index=True)
    message_id: int | None = Field(default=None, foreign_key="message.id")
    reason: str | None = Field(default=None, max_length=200)
    replied_at: datetime | None = utc_column()


class SendPace(SQLModel, table=True):
    """When the next segment may leave a sending pool: one row all sending processes share."""

    pool: str = Field(primary_key=True, max_length=64)
    next_at: float = 0.0  # seconds since the epoch


class JobHealth(SQLModel, table=True):
    """How each of the clock's jobs last went, for the service admins' health panel."""

    name: str = Field(primary_key=True, max_length=32)
    last_run_at: datetime | None = utc_column()
    last_ok_at: datetime | None = utc_column()
    last_error_at: datetime | None = utc_column()
    last_error: str | None = Field(default=None, max_length=500)
    failed_rows: int = 0
