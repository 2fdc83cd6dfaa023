"""Staff access and its trail: users, sign-ins, refused sign-ins, the audit log and import runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from assistant.db.models.columns import json_column, table, utc_column


class User(SQLModel, table=True):
    """Someone who signs in to the dashboard."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, max_length=254)
    password_hash: str = Field(max_length=200)
    role: str = Field(max_length=16)  # specialist, team_lead, service_admin
    service_id: int = Field(foreign_key="service.id", index=True)
    specialist_id: int | None = Field(default=None, foreign_key="specialist.id")
    team: str | None = Field(default=None, max_length=64)
    active: bool = True
    failed_logins: int = 0
    locked_until: datetime | None = utc_column()
    last_login_at: datetime | None = utc_column()
    password_changed_at: datetime | None = utc_column()
    created_at: datetime | None = utc_column()


def specialist_has_left(specialist_id: Any) -> sa.ColumnElement[bool]:
    """True where the specialist had dashboard accounts and every one is deactivated: they have
    left, so nobody reads their mail and texts are not signed with their name."""
    users = table(User)
    theirs = users.c.specialist_id == specialist_id
    return sa.and_(sa.exists().where(theirs), ~sa.exists().where(theirs, users.c.active == sa.true()))


class SignIn(SQLModel, table=True):
    """One signed-in browser: the cookie holds only its random token, stored here as a SHA-256 hash."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    service_id: int = Field(foreign_key="service.id", index=True)
    role: str = Field(max_length=16)  # the role at sign-in: a change of role ends the session
    created_at: datetime | None = utc_column(nullable=False)
    last_seen_at: datetime | None = utc_column(nullable=False)
    remote_addr: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=300)
    ended_at: datetime | None = utc_column()
    end_reason: str | None = Field(default=None, max_length=32)


class FailedSignIn(SQLModel, table=True):
    """A refused sign-in, by address: counted in the database so every worker sees the same count."""

    __table_args__ = (sa.Index("ix_failedsignin_address_at", "address", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=64)
    at: datetime | None = utc_column(nullable=False)


class AuditLog(SQLModel, table=True):
    """Every view of a participant's record and every change: who, what, when."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime | None = utc_column(nullable=False, index=True)
    service_id: int | None = Field(default=None, foreign_key="service.id", index=True)
    user_email: str = Field(max_length=254)
    action: str = Field(max_length=64)
    participant_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    detail: dict[str, Any] = json_column()


class ImportRun(SQLModel, table=True):
    """One CSV import, from the dashboard or the CLI: who, when, what file, what came of it, every error."""

    id: int | None = Field(default=None, primary_key=True)
    # The service the file was imported into; None when a CLI file spanned several (or none could be told).
    service_id: int | None = Field(default=None, foreign_key="service.id", index=True)
    kind: str = Field(max_length=16)  # caseload, appointments
    file_name: str = Field(max_length=255)
    imported_by: str = Field(max_length=254)
    via: str = Field(max_length=16)  # dashboard, cli
    at: datetime | None = utc_column(nullable=False, index=True)
    outcome: str = Field(max_length=16)  # imported, rejected
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
