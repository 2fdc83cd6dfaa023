"""The end of a break a participant asked for by text, and the record-keeping every change they
make by text shares (the audit row, the re-planned check-in)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from assistant.care.audit import audit_as
from assistant.care.flags import has_open_flag, raise_flag
from assistant.contact.checkins import plan_checkin
from assistant.contact.policy import wait_until
from assistant.db.models import DueTask, Participant
from assistant.db.open_items import pending_tasks
from assistant.outbox.writer import queue_sms
from assistant.runtime import Runtime


def audit_change(db: Session, participant: Participant, kind: str, status: str, now: datetime, **detail: Any) -> None:
    by = "participant (by text)"
    detail = {"status": status, **detail}
    audit_as(db, by, participant.service_id, f"contact_{kind}", now, participant_id=participant.id, detail=detail)


def replan_checkin(db: Session, participant: Participant, now: datetime, *, old_every: int | None = None) -> datetime:
    """The next check-in after a change, keeping the rhythm where it can."""

    assert participant.id is not None
    pending = db.exec(pending_tasks(participant.id, "checkin")).first()
    due = None
    if pending is not None and pending.due_at is not None and old_every is not None:
        previous = pending.due_at - timedelta(weeks=old_every)
        due = plan_checkin(db, participant, now, after=previous)
    if due is None or due <= now:
        due = plan_checkin(db, participant, now)
    return due


def set_paused(db: Session, participant: Participant, paused: bool, now: datetime) -> None:
    """The specialist pauses or resumes automated texts; on resuming, the next check-in is
    planned from today, not a backlog. The caller audits who did it."""
    participant.paused = paused
    if not paused:
        participant.paused_until = None
        plan_checkin(db, participant, now)
    db.add(participant)


def run_pause_end(db: Session, rt: Runtime, task: DueTask, participant: Participant, now: datetime) -> str:
    """The break is over: automated texts start again, with a gentle note first."""

    assert participant.id is not None
    if not participant.paused or participant.paused_until is None:
        return "ended_already"  # resumed by the specialist meanwhile
    if participant.paused_until.isoformat() != task.payload.get("until"):
        return "replaced"
    if has_open_flag(db, participant.id, "wrong_person"):
        return "kept_paused_wrong_person"  # paused for another reason too: a person checks the number
    later = None if participant.opted_out else wait_until(db, participant, "checkin", now)
    if later is not None:
        task.due_at = later
        return "deferred"
    participant.paused, participant.paused_until = False, None
    db.add(participant)
    audit_change(db, participant, "pause", "ended", now, request_id=task.payload.get("request_id"))
    raise_flag(
        db, participant, kind="contact_changed", severity="info", now=now,
        reason="Their break from texts has ended: automated texts have started again",
    )  # fmt: skip
    replan_checkin(db, participant, now)
    if participant.opted_out or not participant.sms_consent:
        return "resumed_quietly"
    queue_sms(db, rt, participant, "common/pause_over", now, automated=True)
    return "sent"
