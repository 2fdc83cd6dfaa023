"""The audit log: every view of a participant's record and every change, by whom and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from assistant.db.models import AuditLog, User


def audit(
    db: Session, user: User, action: str, now: datetime, *, participant_id: int | None = None, **detail: Any
) -> None:
    db.add(
        AuditLog(
            at=now,
            service_id=user.service_id,
            user_email=user.email,
            action=action,
            participant_id=participant_id,
            detail=detail,
        )
    )
