"""Flags: something about a participant that needs a person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from .models import Flag, Participant


def raise_flag(
    db: Session,
    participant: Participant,
    *,
    kind: str,
    severity: str,
    reason: str,
    now: datetime,
    evidence: dict[str, Any] | None = None,
) -> Flag:
    """One open flag per kind per participant: a repeat adds its evidence to the open one."""
    item = {"at": now.isoformat(), **(evidence or {})}
    flag = db.exec(
        select(Flag).where(
            Flag.participant_id == participant.id,
            Flag.kind == kind,
            col(Flag.status).in_(("open", "acknowledged")),
        )
    ).first()
    if flag is None:
        assert participant.id is not None
        flag = Flag(
            participant_id=participant.id,
            specialist_id=participant.specialist_id,
            kind=kind,
            severity=severity,
            reason=reason,
            evidence=[item],
            created_at=now,
            updated_at=now,
        )
    else:
        flag.evidence = [*flag.evidence, item]
        flag.updated_at = now
    db.add(flag)
    db.flush()
    return flag
