"""Appointment import: bad input is refused whole; changes re-plan; the export shows reminders and follow-ups."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import col, select

from assistant.clock import FixedClock
from assistant.db.models import Appointment, DueTask, Participant
from assistant.db.units import transaction
from assistant.imports.appointments import import_appointments, parse_local
from assistant.imports.caseload import import_caseload
from assistant.imports.caseload_csv import CsvImportError
from assistant.jobs.tick import tick
from assistant.reporting.export import export_participant, find_participant
from assistant.runtime import Runtime

from .conftest import CASELOAD_HEADER

HEADER = "appointment_id,participant_id,starts_at,kind,duration_minutes,location,outcome\n"


@pytest.fixture
def loaded(rt: Runtime, caseload_file: Path) -> Runtime:
    import_caseload(rt, caseload_file, rt.clock.now())
    return rt


def _csv(tmp_path: Path, rows: str, name: str = "appointments.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + rows)
    return path


def _appointments(rt: Runtime) -> list[Appointment]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(Appointment).order_by(col(Appointment.id))).all())


def _tasks(rt: Runtime, kind: str) -> list[DueTask]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(DueTask).where(DueTask.kind == kind).order_by(col(DueTask.id))).all())


def test_bad_rows_are_each_named_and_nothing_is_imported(loaded: Runtime, tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "A1,P001,2026-11-27 14:00,meeting,60,,\n"  # fine
        "A2,P999,2026-11-27 14:00,meeting,60,,\n"  # unknown participant
        "A3,P001,2026-11-20 14:00,meeting,60,,\n"  # in the past, no outcome
        "A4,P001,2026-11-27 14:00,coffee,60,,\n"  # unknown kind
        "A5,P001,2026-11-27 14:00,meeting,60,,maybe\n"  # unknown outcome
        "A6,P001,2027-03-28 01:30,meeting,60,,\n"  # does not exist: clocks go forward
        "A7,P001,2026-10-25 01:30,meeting,60,,attended\n"  # happens twice: clocks go back
        "A8,P001,next tuesday,meeting,60,,\n"  # not a time
        "A1,P001,2026-11-28 14:00,meeting,60,,\n"  # duplicate id
        "A9,P001,2026-11-27 14:00,meeting,9999,,\n",  # silly duration
    )
    with pytest.raises(CsvImportError) as caught:
        import_appointments(loaded, path, loaded.clock.now())
    errors = caught.value.errors
    for expected in (
        "line 3, column participant_id: no participant 'P999'",
        "line 4, column starts_at: is in the past",
        "line 5, column kind",
        "line 6, column outcome",
        "line 7, column starts_at: 2027-03-28 01:30 does not exist",
        "line 8, column starts_at: 2026-10-25 01:30 happens twice",
        "line 9, column starts_at: not a date and time",
        "line 10, column appointment_id: duplicate of line 2",
        "line 11, column duration_minutes",
    ):
        assert any(e.startswith(expected) for e in errors), (expected, errors)
    assert _appointments(loaded) == []
    assert _tasks(loaded, "appt_reminder") == []


def test_a_past_appointment_with_an_outcome_is_fine(loaded: Runtime, tmp_path: Path) -> None:
    import_appointments(loaded, _csv(tmp_path, "A1,P001,2026-11-20 14:00,meeting,60,,attended\n"), loaded.clock.now())
    [appointment] = _appointments(loaded)
    assert appointment.outcome == "attended" and _tasks(loaded, "appt_reminder") == []


def test_reimport_changes_nothing_and_a_move_replans(loaded: Runtime, tmp_path: Path) -> None:
    path = _csv(tmp_path, "A1,P001,2026-11-27 14:00,meeting,60,Room 4,\n")
    assert import_appointments(loaded, path, loaded.clock.now()).created == 1
    first = [(t.id, t.due_at) for t in _tasks(loaded, "appt_reminder")]
    assert [d.isoformat() for _, d in first if d] == ["2026-11-24T10:00:00+00:00", "2026-11-26T10:00:00+00:00"]
    again = import_appointments(loaded, path, loaded.clock.now())
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    assert [(t.id, t.due_at) for t in _tasks(loaded, "appt_reminder")] == first

    moved = _csv(tmp_path, "A1,P001,2026-12-02 09:30,meeting,60,Room 4,\n", "moved.csv")
    assert import_appointments(loaded, moved, loaded.clock.now()).updated == 1
    tasks = _tasks(loaded, "appt_reminder")
    assert [t.status for t in tasks] == ["cancelled", "cancelled", "pending", "pending"]
    assert _appointments(loaded)[0].version == 2


def test_location_is_only_texted_to_people_who_chose_it(loaded: Runtime, tmp_path: Path, clock: FixedClock) -> None:
    import_appointments(
        loaded, _csv(tmp_path, "A1,P001,2026-11-27 14:00,meeting,60,Room 4 at the library,\n"), clock.now()
    )
    clock.set(datetime(2026, 11, 24, 10, 0, tzinfo=UTC))
    tick(loaded, clock.now())
    with transaction(loaded.engine) as db:
        participant = find_participant(db, "P001")
        record = export_participant(db, participant)
        assert "library" not in record["messages"][-1]["body"]
        participant.show_location = True
        db.add(participant)
    clock.set(datetime(2026, 11, 26, 10, 0, tzinfo=UTC))
    tick(loaded, clock.now())
    with transaction(loaded.engine) as db:
        record = export_participant(db, find_participant(db, "P001"))
    assert "Room 4 at the library" in record["messages"][-1]["body"]


def test_export_lists_appointments_reminders_and_follow_ups(loaded: Runtime, tmp_path: Path, clock: FixedClock) -> None:
    import_appointments(loaded, _csv(tmp_path, "A1,P001,2026-11-27 14:00,meeting,60,,\n"), clock.now())
    for at in ("2026-11-24T10:00:00+00:00", "2026-11-26T10:00:00+00:00"):
        clock.set(datetime.fromisoformat(at))
        tick(loaded, clock.now())
    clock.set(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))
    import_appointments(loaded, _csv(tmp_path, "A1,P001,2026-11-27 14:00,meeting,60,,dna\n", "dna.csv"), clock.now())
    tick(loaded, clock.now())
    with transaction(loaded.engine) as db:
        record = export_participant(db, find_participant(db, "P001"))
    [appointment] = record["appointments"]
    assert appointment["outcome"] == "dna" and appointment["reminders_sent"] == 2
    assert [r["outcome"] for r in appointment["reminders"]] == ["sent", "sent"]
    attempts = appointment["follow_up_attempts"]
    assert [(a["attempt"], a["status"], a["outcome"]) for a in attempts] == [(1, "done", "sent"), (2, "pending", None)]


def test_marking_dna_twice_starts_one_ladder(loaded: Runtime, tmp_path: Path, clock: FixedClock) -> None:
    import_appointments(loaded, _csv(tmp_path, "A1,P001,2026-11-20 14:00,meeting,60,,dna\n"), clock.now())
    import_appointments(loaded, _csv(tmp_path, "A1,P001,2026-11-20 14:00,meeting,60,,attended\n", "b.csv"), clock.now())
    import_appointments(loaded, _csv(tmp_path, "A1,P001,2026-11-20 14:00,meeting,60,,dna\n", "c.csv"), clock.now())
    assert [t.status for t in _tasks(loaded, "dna_attempt")] == ["cancelled", "pending"]
    import_appointments(loaded, _csv(tmp_path, "A1,P001,2026-11-20 14:00,meeting,90,,dna\n", "d.csv"), clock.now())
    assert [t.status for t in _tasks(loaded, "dna_attempt")] == ["cancelled", "pending"]


def test_local_times() -> None:
    assert parse_local("2026-07-01 10:00", "Europe/London").isoformat() == "2026-07-01T09:00:00+00:00"
    assert parse_local("01/12/2026 10:00", "Europe/London").isoformat() == "2026-12-01T10:00:00+00:00"
    with pytest.raises(ValueError, match="does not exist"):
        parse_local("2026-03-29 01:15", "Europe/London")
    with pytest.raises(ValueError, match="happens twice"):
        parse_local("2026-10-25 01:15", "Europe/London")


def test_an_appointment_booked_after_its_reminder_times_gets_one_reminder_now(loaded: Runtime, tmp_path: Path) -> None:
    now = loaded.clock.now()  # Sunday 22 November, 12:00: the day-before reminder time has passed
    path = _csv(tmp_path, "A1,P001,2026-11-23 14:00,meeting,60,Room 4,\nA2,P002,2026-11-22 14:30,meeting,60,Room 4,\n")
    import_appointments(loaded, path, now)
    [reminder] = _tasks(loaded, "appt_reminder")  # tomorrow's, at once; none for one two and a half hours off
    assert (reminder.due_at, reminder.payload["days_before"]) == (now, 1)
    tick(loaded, now)
    with transaction(loaded.engine) as db:
        from assistant.db.models import Message

        [text] = db.exec(select(Message).where(Message.direction == "out")).all()
    assert text.message_key == "appointment_reminder/remind" and "tomorrow" in text.body


def test_a_file_is_matched_by_each_persons_id_within_the_services_in_scope(rt: Runtime, tmp_path: Path) -> None:
    caseload = tmp_path / "caseload.csv"
    caseload.write_text(
        CASELOAD_HEADER
        + "P001,Alex,07700 900101,sam.jones@example.org,Sam Jones,north,out_of_work,Tue,10:30\n"
        + "P001,Ash,07700 900201,kim.lee@example.org,Kim Lee,south,out_of_work,Tue,10:30\n"
        + "P002,Jordan,07700 900102,sam.jones@example.org,Sam Jones,north,out_of_work,Wed,12:30\n"
        + "P003,Priya,07700 900203,kim.lee@example.org,Kim Lee,south,out_of_work,Thu,11:00\n"
    )
    import_caseload(rt, caseload, rt.clock.now())
    now = rt.clock.now()
    both = _csv(tmp_path, "A1,P001,2026-11-27 14:00,meeting,60,,\n")
    with pytest.raises(CsvImportError) as caught:
        import_appointments(rt, both, now)
    assert caught.value.errors == ["line 2, column participant_id: 'P001' is in more than one service"]
    # The dashboard's import is scoped: its service's P001, and nobody else's P003.
    report = import_appointments(rt, _csv(tmp_path, "A1,P001,2026-11-27 14:00,meeting,60,,\n"), now, scope="south")
    assert (report.created, report.services) == (1, frozenset({"south"}))
    with pytest.raises(CsvImportError) as caught:
        import_appointments(rt, _csv(tmp_path, "A2,P003,2026-11-27 14:00,meeting,60,,\n"), now, scope="north")
    assert caught.value.errors == ["line 2, column participant_id: no participant 'P003'"]
    [made] = _appointments(rt)
    with transaction(rt.engine) as db:
        [owner] = db.exec(select(Participant).where(Participant.id == made.participant_id)).all()
    assert (owner.first_name, made.external_id) == ("Ash", "A1")
    # The same row again is unchanged: the appointment is found among the named person's.
    again = import_appointments(rt, _csv(tmp_path, "A1,P001,2026-11-27 14:00,meeting,60,,\n"), now, scope="south")
    assert (again.created, again.unchanged) == (0, 1)
