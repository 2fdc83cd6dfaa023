"""Flags: something about a participant that needs a person."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from .models import DueTask, Flag, Participant, table
from .service_settings import for_service


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
    flag = open_flag(db, participant.id, kind) if participant.id is not None else None
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
        db.add(flag)
        db.flush()
        _tell_people(db, flag, now)
    else:
        flag.evidence = [*flag.evidence, item]
        flag.updated_at = now
        db.add(flag)
        db.flush()
        if flag.severity == "urgent":
            _tell_people(db, flag, now)  # every new disclosure is news
    return flag


def _tell_people(db: Session, flag: Flag, now: datetime) -> None:
    from .notify import queue_flag_emails  # here to keep flags importable without email

    if queue_flag_emails(db, flag, now):
        db.info["emails_queued"] = True  # the caller sends them once this commits
    if flag.severity == "urgent":
        plan_escalation(db, flag, now, repeat=1)


def plan_escalation(db: Session, flag: Flag, now: datetime, *, repeat: int) -> DueTask | None:
    """If nobody acknowledges an urgent flag in the service's time, tell people again."""
    participant = db.get(Participant, flag.participant_id)
    settings = for_service(db, participant.service_id if participant else None)
    if repeat > settings.escalation_repeats:
        return None
    task = DueTask(
        participant_id=flag.participant_id,
        kind="escalate_flag",
        due_at=now + timedelta(minutes=settings.escalate_after_minutes),
        created_at=now,
        payload={"flag_id": flag.id, "repeat": repeat},
    )
    db.add(task)
    db.flush()
    return task


def acknowledge(db: Session, flag: Flag, *, by: str, note: str | None, now: datetime) -> None:
    if flag.status == "open":
        flag.status, flag.acknowledged_at, flag.acknowledged_by = "acknowledged", now, by
    if note:
        flag.note = ((flag.note + "\n") if flag.note else "") + f"{now:%Y-%m-%d %H:%M} {by}: {note}"
    flag.updated_at = now
    db.add(flag)


def resolve(db: Session, flag: Flag, *, by: str, note: str, now: datetime) -> None:
    """Only a person closes a flag, with a note saying what was done."""
    if not note.strip():
        raise ValueError("say what was done: a note is required to resolve a flag")
    if flag.acknowledged_at is None:
        flag.acknowledged_at, flag.acknowledged_by = now, by
    flag.status, flag.resolved_at, flag.resolved_by = "resolved", now, by
    flag.note = ((flag.note + "\n") if flag.note else "") + f"{now:%Y-%m-%d %H:%M} {by}: {note.strip()}"
    flag.updated_at = now
    db.add(flag)


_OPEN_FLAG = select(Flag).where(
    Flag.participant_id == sa.bindparam("participant_id"),
    Flag.kind == sa.bindparam("kind"),
    col(Flag.status).in_(("open", "acknowledged")),
)
_flag = table(Flag)
_OPEN_FLAG_ID = (
    sa.select(_flag.c.id)
    .where(
        _flag.c.participant_id == sa.bindparam("participant_id"),
        _flag.c.kind == sa.bindparam("kind"),
        _flag.c.status.in_(("open", "acknowledged")),
    )
    .limit(1)
)


def open_flag(db: Session, participant_id: int, kind: str) -> Flag | None:
    return db.exec(_OPEN_FLAG, params={"participant_id": participant_id, "kind": kind}).first()


# Only these ever close on their own: a crisis, a callback or a request always waits for a person.
SELF_RESOLVING = {"not_responding", "unreachable", "opted_out"}


def self_resolve(db: Session, participant_id: int, kind: str, now: datetime, *, note: str) -> Flag | None:
    assert kind in SELF_RESOLVING
    # Asked on every reply and nearly always answered "none": a bare id first, the flag only if there is one.
    # (Flags are flushed as they are raised, so the database already has any this transaction made.)
    if db.execute(_OPEN_FLAG_ID, {"participant_id": participant_id, "kind": kind}).first() is None:
        return None
    flag = open_flag(db, participant_id, kind)
    if flag is not None:
        flag.status, flag.resolved_at, flag.resolved_by = "resolved", now, "assistant"
        flag.note = ((flag.note + "\n") if flag.note else "") + f"{now:%Y-%m-%d %H:%M} assistant: {note}"
        flag.updated_at = now
        db.add(flag)
    return flag
