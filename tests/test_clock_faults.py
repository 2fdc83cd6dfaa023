"""One bad row never stops the clock: a due row or a wait that fails keeps its error, is tried again
later with backoff, and everyone else's contact, the outbox and the staff email still go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from assistant.care.flags import raise_flag
from assistant.clock import FixedClock
from assistant.db.models import DueTask, Flag, FlowSession, JobHealth, Message, Notification, Participant
from assistant.db.units import transaction
from assistant.imports.caseload import import_caseload
from assistant.jobs import tick as ticking
from assistant.jobs.tick import MAX_ROW_ATTEMPTS, retry_after, tick
from assistant.runtime import Runtime

MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _people(rt: Runtime) -> dict[str, Participant]:
    with transaction(rt.engine) as db:
        return {p.external_id: p for p in db.exec(select(Participant)).all()}


def _poison(rt: Runtime, people: dict[str, Participant], now: datetime) -> dict[str, int]:
    """One broken row of each kind the clock handles, plus healthy work due at the same time."""
    alex, jordan, priya = people["P001"].id, people["P002"].id, people["P003"].id
    assert alex is not None and jordan is not None and priya is not None
    with transaction(rt.engine) as db:
        rows = {
            # a questionnaire whose instrument has been removed from the service's content
            "questionnaire": DueTask(
                participant_id=jordan, kind="questionnaire", due_at=now, payload={"instruments": ["removed"]}
            ),
            # a kind no version of the code knows
            "unknown": DueTask(participant_id=alex, kind="no_such_kind", due_at=now, payload={}),
            # healthy: Priya's questionnaire is due now
            "healthy": DueTask(
                participant_id=priya,
                kind="questionnaire",
                due_at=now,
                payload={"instruments": ["gad7"], "reason": "now"},
            ),
        }
        for row in rows.values():
            db.add(row)
        # a wait whose saved state no longer fits its flow
        broken = FlowSession(
            participant_id=jordan,
            flow="checkin",
            flow_version=1,
            status="waiting",
            state={"node": "no_such_node", "vars": {}},
            started_at=now - timedelta(days=2),
            wait_until=now - timedelta(minutes=1),
            question="week",
        )
        db.add(broken)
        # an urgent flag for Alex, whose email must still go
        raise_flag(
            db,
            db.get(Participant, alex),  # type: ignore[arg-type]
            kind="silence",
            severity="urgent",
            reason="Not heard from",
            now=now,
            evidence={},
        )
        db.flush()
        ids = {name: row.id for name, row in rows.items()}
        ids["session"] = broken.id
    return {k: v for k, v in ids.items() if v is not None}


def test_poisoned_rows_fail_alone_and_everything_else_goes(rt: Runtime, caseload_file: Path, clock: FixedClock) -> None:
    clock.set(MONDAY_10)
    import_caseload(rt, caseload_file, MONDAY_10 - timedelta(days=1))
    people = _people(rt)
    ids = _poison(rt, people, MONDAY_10)

    report = tick(rt, MONDAY_10)

    assert report.failed_jobs == {}, "a bad row must not fail its whole job"
    assert report.failed_rows == 3  # two due rows and one wait
    with transaction(rt.engine) as db:
        # Priya's questionnaire started and its first text was sent, in the same tick as the failures.
        healthy = db.get(DueTask, ids["healthy"])
        assert healthy is not None and healthy.status == "done" and healthy.outcome == "sent"
        sent_to_priya = db.exec(
            select(Message).where(Message.participant_id == people["P003"].id, Message.direction == "out")
        ).all()
        assert [m.status for m in sent_to_priya] == ["sent"]
        # The urgent flag's email went.
        emails = db.exec(select(Notification)).all()
        assert emails and all(n.status == "sent" for n in emails)
        # Each bad row keeps its error and is due again later, not now.
        for name in ("questionnaire", "unknown"):
            task = db.get(DueTask, ids[name])
            assert task is not None and task.status == "pending" and task.attempts == 1
            assert task.last_error and task.due_at == MONDAY_10 + retry_after(1)
        session = db.get(FlowSession, ids["session"])
        assert session is not None and session.status == "waiting" and session.timeout_attempts == 1
        assert session.last_error and session.wait_until == MONDAY_10 + retry_after(1)
        health = {row.name: row for row in db.exec(select(JobHealth)).all()}
        assert health["tasks"].failed_rows == 2 and health["timeouts"].failed_rows == 1
        assert health["sending"].last_ok_at == MONDAY_10 and health["email"].last_ok_at == MONDAY_10


def test_a_row_that_keeps_failing_is_given_up_and_a_person_is_told(
    rt: Runtime, caseload_file: Path, clock: FixedClock
) -> None:
    clock.set(MONDAY_10)
    import_caseload(rt, caseload_file, MONDAY_10 - timedelta(days=1))
    people = _people(rt)
    ids = _poison(rt, people, MONDAY_10)
    now = MONDAY_10
    for attempt in range(1, MAX_ROW_ATTEMPTS + 1):
        report = tick(rt, now)
        assert report.failed_rows >= 2, f"try {attempt}: the bad rows were not tried"
        now += retry_after(attempt)
    with transaction(rt.engine) as db:
        task = db.get(DueTask, ids["unknown"])
        assert task is not None and task.status == "failed" and task.attempts == MAX_ROW_ATTEMPTS
        flags = db.exec(
            select(Flag).where(Flag.participant_id == people["P001"].id, col(Flag.kind) == "contact_failed")
        ).all()
        assert flags, "nobody was told that a scheduled contact could not be made"
    # Once given up, the row is left alone: the next tick finds no failures among the due rows.
    assert tick(rt, now + timedelta(hours=2)).failed_rows <= 1  # only the wait, still retrying


def test_each_jobs_health_keeps_its_last_success_and_its_last_error(
    rt: Runtime, caseload_file: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_caseload(rt, caseload_file, MONDAY_10 - timedelta(days=1))
    tick(rt, MONDAY_10)
    later, latest = MONDAY_10 + timedelta(minutes=1), MONDAY_10 + timedelta(minutes=2)

    def broken(*_args: object) -> None:
        raise RuntimeError("the campaigns job is broken")

    with monkeypatch.context() as patched:
        jobs = [(name, broken if name == "campaigns" else job) for name, job in ticking.JOBS]
        patched.setattr(ticking, "JOBS", jobs)
        assert tick(rt, later).failed_jobs == {"campaigns": "RuntimeError: the campaigns job is broken"}
    with transaction(rt.engine) as db:
        health = {row.name: row for row in db.exec(select(JobHealth)).all()}
    assert set(health) == {name for name, _job in ticking.JOBS}
    assert all(row.last_run_at == later for row in health.values())
    failed = health["campaigns"]
    assert (failed.last_ok_at, failed.last_error_at) == (MONDAY_10, later) and "broken" in (failed.last_error or "")
    assert all(row.last_ok_at == later for name, row in health.items() if name != "campaigns")

    tick(rt, latest)  # every job well again: each row's run and success move on, the error stays on record
    with transaction(rt.engine) as db:
        health = {row.name: row for row in db.exec(select(JobHealth)).all()}
    assert all((row.last_run_at, row.last_ok_at, row.failed_rows) == (latest, latest, 0) for row in health.values())
    assert health["campaigns"].last_error_at == later
