"""Flags: something about a participant that needs a person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from assistant.db.driver import Prepared
from assistant.db.models import Flag, FlagStatus, Participant
from assistant.db.open_items import OPEN_FLAG_ID
from assistant.db.rows import add_now, get_row, write_now


def raise_flag(
    db: Session,
    participant: Participant,
    *,
    kind: str,
    severity: str,
    reason: str,
    now: datetime,
    evidence: dict[str, Any] | None = None,
    news: str | None = None,
) -> Flag:
    """One open flag per kind per participant: a repeat adds its evidence to the open one.

    An urgent flag is told at once and reminded until acknowledged (notify.tell_urgent); a
    repeat on it is news (notify.urgent_news). `news` names an evidence key that changes what
    people must do (e.g. "signposting_not_delivered"): the first item carrying it is told at once.
    """
    item = {"at": now.isoformat(), **(evidence or {})}
    flag = open_flag(db, participant.id, kind) if participant.id is not None else None
    if flag is None:
        assert participant.id is not None
        flag = add_now(
            db,
            Flag,
            participant_id=participant.id,
            specialist_id=participant.specialist_id,
            kind=kind,
            severity=severity,
            reason=reason,
            evidence=[item],
            created_at=now,
            updated_at=now,
        )
        _tell_people(db, flag, now)
    else:
        first_news = news is not None and not any(news in e for e in flag.evidence)
        items, headline = flag.evidence, flag.reason
        if kind in ("contact_changed", "message") and reason != flag.reason:
            # A log of changes or messages: its headline is the latest (a text after START is no
            # longer one sent "while texts are stopped"); each earlier one keeps its own words.
            items = [{"reason": flag.reason, **e} if "reason" not in e else e for e in items]
            headline = reason
        write_now(db, flag, evidence=[*items, item], reason=headline, updated_at=now)
        if flag.severity == "urgent":
            from assistant.care.notify import urgent_news

            urgent_news(db, flag, now, at_once=first_news)  # every new disclosure is news
    return flag


def _tell_people(db: Session, flag: Flag, now: datetime) -> None:
    """Urgent flags at once (the caller sends what is queued once this commits); others in the digest."""
    if flag.severity == "urgent":
        from assistant.care.notify import tell_urgent  # here to keep flags importable without email

        tell_urgent(db, flag, now)


def acknowledge(db: Session, flag: Flag, *, by: str, note: str | None, now: datetime) -> None:
    """A person has it: reminders stop (they start again if the participant writes about it again)."""
    if flag.status == FlagStatus.OPEN:
        flag.status, flag.acknowledged_at, flag.acknowledged_by = FlagStatus.ACKNOWLEDGED, now, by
        flag.next_notice_at, flag.notices = None, 0
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
    flag.status, flag.resolved_at, flag.resolved_by = FlagStatus.RESOLVED, now, by
    flag.next_notice_at = None
    flag.note = ((flag.note + "\n") if flag.note else "") + f"{now:%Y-%m-%d %H:%M} {by}: {note.strip()}"
    flag.updated_at = now
    db.add(flag)


_OPEN_FLAG_ID = Prepared(OPEN_FLAG_ID)


def open_flag(db: Session, participant_id: int, kind: str) -> Flag | None:
    """Their open or acknowledged flag of this kind. Asked on every reply and every flag raised, and
    nearly always answered "none": a bare id first, the flag itself only if there is one."""
    found = _OPEN_FLAG_ID.run(db, {"participant_id": participant_id, "kind": kind}).first()
    return None if found is None else get_row(db, Flag, found[0])


def has_open_flag(db: Session, participant_id: int, kind: str) -> bool:
    """They have an open or acknowledged flag of this kind (one not yet resolved)."""
    return _OPEN_FLAG_ID.run(db, {"participant_id": participant_id, "kind": kind}).first() is not None


# Only these ever close on their own: a crisis, a callback or a request always waits for a person.
SELF_RESOLVING = {"not_responding", "unreachable", "opted_out"}


def self_resolve(db: Session, participant_id: int, kind: str, now: datetime, *, note: str) -> Flag | None:
    assert kind in SELF_RESOLVING
    # (Flags are flushed as they are raised, so the database already has any this transaction made.)
    flag = open_flag(db, participant_id, kind)
    if flag is not None:
        flag.status, flag.resolved_at, flag.resolved_by = FlagStatus.RESOLVED, now, "assistant"
        flag.note = ((flag.note + "\n") if flag.note else "") + f"{now:%Y-%m-%d %H:%M} assistant: {note}"
        flag.updated_at = now
        db.add(flag)
    return flag
