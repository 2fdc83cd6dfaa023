"""The services, their specialists, the people they support, consent and job starts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from assistant.db.models.columns import json_column, utc_column


class Service(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, max_length=64)
    name: str = Field(max_length=200)
    settings: dict[str, Any] = json_column()


class Specialist(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, max_length=254)
    name: str = Field(default="", max_length=200)
    service_id: int = Field(foreign_key="service.id", index=True)
    team: str | None = Field(default=None, max_length=64)
    # Their daily digest of non-urgent flags: local time (None: the service's), last one sent.
    digest_time: str | None = Field(default=None, max_length=5)
    last_digest_at: datetime | None = utc_column()
    # Full-time equivalent (1.0 full time, 0.6 three days a week): their share of the caseload cap.
    fte: float = Field(default=1.0, sa_column_kwargs={"server_default": "1.0"})


class Participant(SQLModel, table=True):
    __table_args__ = (
        sa.UniqueConstraint("service_id", "external_id"),
        # Who has been quiet since before a moment: the days-of-silence rule on every tick.
        sa.Index("ix_participant_quiet", "service_id", "last_inbound_at", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    service_id: int = Field(foreign_key="service.id")  # (indexed first in ix_participant_quiet)
    external_id: str = Field(max_length=64, index=True)
    first_name: str = Field(max_length=100)
    phone: str = Field(unique=True, max_length=20)
    specialist_id: int = Field(foreign_key="specialist.id", index=True)
    cohort: str = Field(default="out_of_work", max_length=20)
    checkin_day: int = 1  # Monday is 0
    checkin_time: str = Field(default="10:30", max_length=5)
    checkin_every_weeks: int = 1
    timezone: str = Field(default="Europe/London", max_length=64)
    language: str = Field(default="en-GB", max_length=16)
    opted_out: bool = False
    opted_out_at: datetime | None = utc_column()
    unreachable: bool = False
    unreachable_reason: str | None = Field(default=None, max_length=200)
    paused: bool = False
    # Hours automated texts may arrive, local time; None means the service's default.
    allowed_from: str | None = Field(default=None, max_length=5)
    allowed_until: str | None = Field(default=None, max_length=5)
    # Their own windows when one pair of hours does not fit: "06:00-07:30,17:30-20:00", or one
    # crossing midnight, "22:00-02:00" (see assistant/windows.py). Set, it replaces the hours above.
    contact_windows: str | None = Field(default=None, max_length=23)
    # A break they asked for by text: automated texts wait until then (paused is set meanwhile).
    paused_until: datetime | None = utc_column()
    # Appointment places are only texted to people who asked for that.
    show_location: bool = False
    support_started_on: date | None = None
    support_ends_on: date | None = None
    # The journey's two ends: where and when the referral came from; why support ended, and who said so.
    referral_date: date | None = None
    referral_source: str | None = Field(default=None, max_length=64)
    exit_reason: str | None = Field(default=None, max_length=32)
    exit_recorded_at: datetime | None = utc_column()
    exit_recorded_by: str | None = Field(default=None, max_length=254)
    # Consent to be contacted by text (the latest Consent row for "sms_contact"), kept here for quick checks.
    sms_consent: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    erased_at: datetime | None = utc_column()
    tags: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False, server_default="[]"))
    last_inbound_at: datetime | None = utc_column()
    created_at: datetime | None = utc_column()
    updated_at: datetime | None = utc_column()


class Consent(SQLModel, table=True):
    """Consent (or another lawful basis) per purpose, as recorded, with who recorded it and when.
    The latest row for a purpose is the one in force; earlier rows are the history."""

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    purpose: str = Field(max_length=32)  # sms_contact, evaluation, share_with_referrer
    granted: bool
    lawful_basis: str = Field(max_length=64)
    recorded_by: str = Field(max_length=254)
    recorded_at: datetime | None = utc_column(nullable=False)
    note: str = Field(default="", max_length=500)


class JobStart(SQLModel, table=True):
    """A job start the specialist recorded; sustainment answers (13 and 26 weeks) are kept on it."""

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    started_on: date
    hours_per_week: float
    employer: str = Field(default="", max_length=200)
    sector: str = Field(max_length=64)
    recorded_by: str = Field(max_length=254)
    recorded_at: datetime | None = utc_column(nullable=False)
    # {"13": "yes", "26": "changed_job"}: the answer to each sustainment check, by weeks in work.
    sustainment: dict[str, Any] = json_column()
