"""A session ends one way: ended, when, why, and no longer waiting; a routine one a new contact
closes is ended as superseded and its version moves on, so work planned against it is skipped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from assistant.clock import FixedClock
from assistant.contact.due import _make_room
from assistant.db.models import FlowSession, Participant, SessionStatus
from assistant.db.units import transaction
from assistant.imports.caseload import import_caseload
from assistant.runtime import Runtime
from assistant.sessions.lifecycle import end_session

MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _waiting_checkin(rt: Runtime, now: datetime) -> int:
    with transaction(rt.engine) as db:
        participant = db.exec(select(Participant).where(Participant.external_id == "P001")).one()
        assert participant.id is not None
        row = FlowSession(
            participant_id=participant.id,
            flow="checkin",
            flow_version=1,
            state={"node": "week", "vars": {}},
            started_at=now - timedelta(days=2),
            wait_until=now + timedelta(days=1),
            question="week",
        )
        db.add(row)
        db.flush()
        assert row.id is not None
        return row.id


def test_ending_a_session_says_when_why_and_from_what(rt: Runtime, caseload_file: Path, clock: FixedClock) -> None:
    clock.set(MONDAY_10)
    import_caseload(rt, caseload_file, MONDAY_10 - timedelta(days=1))
    session_id = _waiting_checkin(rt, MONDAY_10)
    with transaction(rt.engine) as db:
        row = db.get(FlowSession, session_id)
        assert row is not None
        assert end_session(db, row, "support_ended", MONDAY_10) == "waiting"
    with transaction(rt.engine) as db:
        row = db.get(FlowSession, session_id)
        assert row is not None
        assert (row.status, row.ended_at, row.end_reason, row.wait_until) == ("ended", MONDAY_10, "support_ended", None)


def test_a_new_contact_supersedes_a_routine_session_still_waiting(
    rt: Runtime, caseload_file: Path, clock: FixedClock
) -> None:
    clock.set(MONDAY_10)
    import_caseload(rt, caseload_file, MONDAY_10 - timedelta(days=1))
    session_id = _waiting_checkin(rt, MONDAY_10)
    with transaction(rt.engine) as db:
        participant = db.exec(select(Participant).where(Participant.external_id == "P001")).one()
        assert _make_room(db, rt, participant, MONDAY_10, "appointment_reminder") is None
    with transaction(rt.engine) as db:
        row = db.get(FlowSession, session_id)
        assert row is not None
        assert row.status == SessionStatus.ENDED and row.end_reason == "superseded" and row.ended_at == MONDAY_10
        assert row.wait_until is None and row.version == 2
