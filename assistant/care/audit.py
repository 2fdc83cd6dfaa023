"""The audit log: every view of a participant's record and every change, by whom and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from assistant.db.models import AuditLog, User


def audit(
    db: Session, user: User, action: str, now: datetime, *, participant_id: int | None = None, **detail: Any
) -> None:
    audit_as(db, user.email, user.service_id, action, now, participant_id=participant_id, detail=detail)


def audit_as(
    db: Session,
    email: str,
    service_id: int | None,
    action: str,
    now: datetime,
    *,
    participant_id: int | None = None,
    detail: dict[str, Any],
) -> None:
    """One row of the audit log in the name of `email`: a signed-in user, the command line, or the
    participant by text."""
    db.add(
        AuditLog(
            at=now,
            service_id=service_id,
            user_email=email,
            action=action,
            participant_id=participant_id,
            detail=detail,
        )
    )
