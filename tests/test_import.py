"""Caseload import: all or nothing, every error named, idempotent, updates in place."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import col, func, select

from assistant.care.flags import raise_flag
from assistant.db.models import AuditLog, DueTask, Flag, Participant, Service, Specialist
from assistant.db.units import transaction
from assistant.imports.caseload import import_caseload
from assistant.imports.caseload_csv import CsvImportError
from assistant.runtime import Runtime

from .conftest import CASELOAD_HEADER


def _people(rt: Runtime) -> list[Participant]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(Participant).order_by(col(Participant.external_id))).all())


def _pending_checkins(rt: Runtime) -> list[DueTask]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(DueTask).where(DueTask.status == "pending").order_by(col(DueTask.id))).all())


def test_import_stores_e164_and_creates_specialists(rt: Runtime, caseload_file: Path) -> None:
    report = import_caseload(rt, caseload_file, rt.clock.now())
    assert (report.created, report.updated, report.unchanged, report.specialists_created) == (3, 0, 0, 2)
    people = _people(rt)
    assert [p.phone for p in people] == ["+447700900101", "+447700900102", "+447700900103"]
    assert [p.checkin_every_weeks for p in people] == [1, 4, 1]
    with transaction(rt.engine) as db:
        assert sorted(s.email for s in db.exec(select(Specialist)).all()) == [
            "chris.lee@example.org",
            "sam.jones@example.org",
        ]
    # Each participant has exactly one check-in planned, at their local day and time.
    tasks = _pending_checkins(rt)
    assert len(tasks) == 3
    assert tasks[0].due_at is not None and tasks[0].due_at.isoformat() == "2026-11-24T10:30:00+00:00"


def test_reimporting_the_same_file_changes_nothing(rt: Runtime, caseload_file: Path) -> None:
    import_caseload(rt, caseload_file, rt.clock.now())
    before = [(p.id, p.updated_at) for p in _people(rt)]
    tasks_before = [(t.id, t.due_at) for t in _pending_checkins(rt)]
    report = import_caseload(rt, caseload_file, rt.clock.now())
    assert (report.created, report.updated, report.unchanged) == (0, 0, 3)
    assert [(p.id, p.updated_at) for p in _people(rt)] == before
    assert [(t.id, t.due_at) for t in _pending_checkins(rt)] == tasks_before


def test_changed_row_updates_that_participant_and_replans(rt: Runtime, caseload_file: Path, tmp_path: Path) -> None:
    import_caseload(rt, caseload_file, rt.clock.now())
    changed = tmp_path / "changed.csv"
    changed.write_text(
        caseload_file.read_text().replace("Alex,07700 900101", "Alexa,07700 900111").replace("Tue,10:30", "Fri,14:00")
    )
    report = import_caseload(rt, changed, rt.clock.now())
    assert (report.created, report.updated, report.unchanged) == (0, 1, 2)
    alexa = _people(rt)[0]
    assert (alexa.first_name, alexa.phone, alexa.checkin_day, alexa.checkin_time) == (
        "Alexa",
        "+447700900111",
        4,
        "14:00",
    )
    pending = [t for t in _pending_checkins(rt) if t.participant_id == alexa.id]
    assert len(pending) == 1 and pending[0].due_at is not None
    assert pending[0].due_at.isoformat() == "2026-11-27T14:00:00+00:00"


def test_a_bad_file_is_rejected_whole_with_every_error(rt: Runtime, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        CASELOAD_HEADER
        + "P001,Alex,07700 900101,sam@example.org,Sam,north,out_of_work,Tue,10:30\n"
        + "P002,,12345,not-an-email,Sam,north,retired,Funday,25:00\n"
        + "P001,Again,07700 900101,sam@example.org,Sam,north,in_work,Wed,12:30\n"
    )
    with pytest.raises(CsvImportError) as caught:
        import_caseload(rt, bad, rt.clock.now())
    errors = caught.value.errors
    for expected in (
        "line 3, column first_name",
        "line 3, column phone",
        "line 3, column specialist_email",
        "line 3, column cohort",
        "line 3, column checkin_day",
        "line 3, column checkin_time",
        "line 4, column participant_id: duplicate of line 2",
        "line 4, column phone: duplicate of line 2",
    ):
        assert any(e.startswith(expected) for e in errors), (expected, errors)
    assert _people(rt) == []  # nothing written, not even the good first row


def test_missing_required_columns_and_unknown_columns(rt: Runtime, tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    missing.write_text("participant_id,first_name\nP001,Alex\n")
    with pytest.raises(CsvImportError) as caught:
        import_caseload(rt, missing, rt.clock.now())
    assert any("phone" in e for e in caught.value.errors)
    assert any("specialist_email" in e for e in caught.value.errors)

    extra = tmp_path / "extra.csv"
    extra.write_text(
        "Participant_ID,First_Name,Phone,Specialist_Email,Shoe_Size\nP001,Alex,07700900101,sam@example.org,9\n"
    )
    report = import_caseload(rt, extra, rt.clock.now())
    assert report.ignored_columns == ["shoe_size"] and report.created == 1


def test_phone_already_held_by_another_participant_is_refused(rt: Runtime, caseload_file: Path, tmp_path: Path) -> None:
    import_caseload(rt, caseload_file, rt.clock.now())
    clash = tmp_path / "clash.csv"
    clash.write_text(
        CASELOAD_HEADER + "P009,Sam,07700900101,sam.jones@example.org,Sam Jones,north,out_of_work,Tue,10:30\n"
    )
    with pytest.raises(CsvImportError) as caught:
        import_caseload(rt, clash, rt.clock.now())
    assert caught.value.errors == ["line 2, column phone: already belongs to participant P001 in service north"]
    assert len(_people(rt)) == 3
    # Beside a malformed row, the clash is still listed: one refusal names every problem, in file order.
    clash.write_text(
        CASELOAD_HEADER
        + "P009,Sam,07700900101,sam.jones@example.org,Sam Jones,north,out_of_work,Tue,10:30\n"
        + "P010,Kit,12345,sam.jones@example.org,Sam Jones,north,out_of_work,Tue,10:30\n"
    )
    with pytest.raises(CsvImportError) as caught:
        import_caseload(rt, clash, rt.clock.now())
    assert [e.split(":")[0] for e in caught.value.errors] == ["line 2, column phone", "line 3, column phone"]
    assert len(_people(rt)) == 3


def test_a_specialist_of_another_service_is_refused_so_no_flag_goes_where_nobody_can_open_it(
    rt: Runtime, caseload_file: Path, tmp_path: Path
) -> None:
    import_caseload(rt, caseload_file, rt.clock.now())
    elsewhere = tmp_path / "no_service.csv"
    # No service column: the row is the 'default' service's, and Sam works in north.
    elsewhere.write_text(
        "participant_id,first_name,phone,specialist_email\nP009,Lee,07700900109,sam.jones@example.org\n"
    )
    with pytest.raises(CsvImportError) as caught:
        import_caseload(rt, elsewhere, rt.clock.now())
    assert caught.value.errors == [
        "line 2, column specialist_email: sam.jones@example.org works in service north, not default"
        " (a row with no service is for the 'default' service: name it)"
    ]
    assert len(_people(rt)) == 3
    with transaction(rt.engine) as db:
        assert db.exec(select(func.count()).select_from(Service)).one() == 1  # no service made either


def _scoped_errors(rt: Runtime, row: str) -> list[str]:
    with pytest.raises(CsvImportError) as caught:
        import_caseload(rt, (CASELOAD_HEADER + row).encode(), rt.clock.now(), scope="south")
    return caught.value.errors


def test_a_scoped_import_refuses_another_services_number_or_specialist_as_it_refuses_a_bad_one(
    rt: Runtime, caseload_file: Path
) -> None:
    import_caseload(rt, caseload_file, rt.clock.now())  # the north: P001 on 07700900101, sam.jones@...
    taken_phone = _scoped_errors(rt, "S1,Kim,07700900101,kim@example.org,Kim,south,out_of_work,Tue,10:30\n")
    bad_phone = _scoped_errors(rt, "S1,Kim,12345,kim@example.org,Kim,south,out_of_work,Tue,10:30\n")
    assert (
        taken_phone
        == bad_phone
        == [
            "line 2, column phone: this number cannot be used: check it is a whole UK phone number; "
            "if it is, whoever runs the assistant can say why"
        ]
    )
    taken_email = _scoped_errors(rt, "S1,Kim,07700900150,sam.jones@example.org,Sam,south,out_of_work,Tue,10:30\n")
    bad_email = _scoped_errors(rt, "S1,Kim,07700900150,not-an-address,Sam,south,out_of_work,Tue,10:30\n")
    assert (
        taken_email
        == bad_email
        == [
            "line 2, column specialist_email: this email address cannot be used: check it is whole; "
            "if it is, whoever runs the assistant can say why"
        ]
    )
    said = " ".join(taken_phone + taken_email).lower()
    for clue in ("north", "p001", "alex", "already", "another", "service", "use"):
        assert clue not in said.replace("be used", "")
    assert len(_people(rt)) == 3


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"participant_id,first_name\xff\xfe\n", "UTF-8"),
        (b"participant_id,first\x00name\n", "NUL"),
        (b'participant_id,first_name,phone,specialist_email\n"P001,Alex', "CSV"),
        # A spreadsheet's own save: Windows-1252 ("Zo\xeb") on line 2, and semicolons between columns.
        (
            b"participant_id,first_name\nP001,Zo\xeb\n",
            "line 2: file is not UTF-8 text (byte 33); save it as 'CSV UTF-8'",
        ),
        (b"participant_id;first_name;phone;specialist_email\nP001;Alex;07700900101;a@b.org\n", "separated by ';'"),
    ],
)
def test_malformed_files_are_refused(rt: Runtime, tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    with pytest.raises(CsvImportError) as caught:
        import_caseload(rt, path, rt.clock.now())
    assert any(reason.lower() in e.lower() for e in caught.value.errors), caught.value.errors


def test_oversized_file_is_refused(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_bytes(CASELOAD_HEADER.encode() + b"x" * (6 * 1024 * 1024))
    with pytest.raises(CsvImportError, match="larger than"):
        import_caseload(rt, path, rt.clock.now())


def test_byte_order_mark_and_blank_lines_are_fine(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(("\ufeff" + CASELOAD_HEADER + "\nP001,Alex,07700900101,sam@example.org,Sam,north,,,\n\n").encode())
    assert import_caseload(rt, path, rt.clock.now()).created == 1
    [alex] = _people(rt)
    assert (alex.cohort, alex.checkin_day, alex.checkin_time) == ("out_of_work", 1, "10:30")
    with transaction(rt.engine) as db:
        assert db.exec(select(func.count()).select_from(DueTask)).one() == 1


def test_an_unknown_language_is_refused_with_its_line_and_column(rt: Runtime, tmp_path: Path) -> None:
    rows = tmp_path / "languages.csv"
    rows.write_text(
        CASELOAD_HEADER.strip()
        + ",language\n"
        + "P001,Alex,07700 900101,sam@example.org,Sam,north,out_of_work,Tue,10:30,en-GB\n"
        + "P002,Jo,07700 900102,sam@example.org,Sam,north,out_of_work,Tue,10:30,\n"
        + "P003,Kim,07700 900103,sam@example.org,Sam,north,out_of_work,Tue,10:30,fr\n"
        + "P004,Lee,07700 900104,sam@example.org,Sam,north,out_of_work,Tue,10:30,en-GB/../en-GB\n"
    )
    with pytest.raises(CsvImportError) as caught:
        import_caseload(rt, rows, rt.clock.now())
    assert caught.value.errors == [
        "line 4, column language: unknown language 'fr': must be one of en-GB",
        "line 5, column language: unknown language 'en-GB/../en-GB': must be one of en-GB",
    ]
    assert _people(rt) == []
    rows.write_text(rows.read_text().replace(",fr\n", ",en-GB\n").replace(",en-GB/../en-GB\n", ",en-GB\n"))
    assert import_caseload(rt, rows, rt.clock.now()).created == 4
    assert {p.language for p in _people(rt)} == {"en-GB"}


def test_a_new_phone_number_lifts_the_unreachable_mark(rt: Runtime, caseload_file: Path, tmp_path: Path) -> None:
    import_caseload(rt, caseload_file, rt.clock.now())
    with transaction(rt.engine) as db:
        alex = db.exec(select(Participant).where(Participant.external_id == "P001")).one()
        alex.unreachable, alex.unreachable_reason = True, "twilio error 30006"
        db.add(alex)
        raise_flag(db, alex, kind="unreachable", severity="action", reason="Cannot be reached", now=rt.clock.now())
    same = import_caseload(rt, caseload_file, rt.clock.now())
    assert same.unchanged == 3 and _people(rt)[0].unreachable  # the same number: still marked
    changed = tmp_path / "changed.csv"
    changed.write_text(caseload_file.read_text().replace("07700 900101", "07700 900111"))
    import_caseload(rt, changed, rt.clock.now())
    alex = _people(rt)[0]
    assert (alex.phone, alex.unreachable, alex.unreachable_reason) == ("+447700900111", False, None)
    with transaction(rt.engine) as db:
        [flag] = db.exec(select(Flag)).all()
        [entry] = db.exec(select(AuditLog)).all()
    assert (flag.status, flag.note) == ("resolved", "2026-11-22 12:00 assistant: The phone number changed")
    assert (entry.action, entry.user_email, entry.participant_id) == ("reachable_again", "caseload import", alex.id)
    assert entry.detail == {"why": "phone_changed", "was": "twilio error 30006"}


@pytest.mark.parametrize(
    "bad", ["Sam\nBcc: x", "Sam\rJones", "Sam\tJones", "Sam\x1b[2J", "Sam\u2028Jones", "Sam\x85Jones"]
)
@pytest.mark.parametrize("column", ["first_name", "specialist_name", "team"])
def test_names_refuse_line_breaks_and_control_characters(rt: Runtime, column: str, bad: str) -> None:
    import csv
    import io

    row = {
        "participant_id": "P001",
        "first_name": "Alex",
        "phone": "07700900101",
        "specialist_email": "sam@example.org",
        "specialist_name": "Sam Jones",
        "team": "blue",
    }
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(row))
    writer.writeheader()
    writer.writerow(row | {column: bad})
    with pytest.raises(CsvImportError) as caught:
        import_caseload(rt, out.getvalue().encode(), rt.clock.now())
    assert [e.split(":")[0] for e in caught.value.errors] == [f"line 2, column {column}"]
    assert _people(rt) == []
    # The same row with an ordinary name goes in.
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(row))
    writer.writeheader()
    writer.writerow(row | {column: "Ana-María O'Neill"})
    assert import_caseload(rt, out.getvalue().encode(), rt.clock.now()).created == 1


def test_a_reimport_changes_only_the_columns_it_fills_and_never_gives_consent_back(
    rt: Runtime, caseload_file: Path, tmp_path: Path
) -> None:
    from datetime import date

    from assistant.care.privacy import record_consent

    import_caseload(rt, caseload_file, rt.clock.now())
    with transaction(rt.engine) as db:
        priya = db.exec(select(Participant).where(Participant.external_id == "P003")).one()
        record_consent(db, priya, "sms_contact", granted=False, by="priya", now=rt.clock.now())
        priya.checkin_time, priya.support_started_on = "16:00", date(2026, 11, 2)
        db.add(priya)
    checkins_before = [(t.id, t.due_at) for t in _pending_checkins(rt)]
    short = tmp_path / "short.csv"
    short.write_text(
        "participant_id,first_name,phone,specialist_email,service,checkin_time,consent_sms\n"
        "P003,Priya,07700 900103,chris.lee@example.org,north,,yes\n"
    )
    report = import_caseload(rt, short, rt.clock.now())
    assert (report.updated, report.unchanged) == (0, 1)
    priya = _people(rt)[2]
    assert (priya.sms_consent, priya.checkin_time, priya.support_started_on, priya.cohort) == (
        False,
        "16:00",
        date(2026, 11, 2),
        "out_of_work",
    )
    assert [(t.id, t.due_at) for t in _pending_checkins(rt)] == checkins_before
    # A file can still withdraw consent, and change what it fills.
    short.write_text(
        "participant_id,first_name,phone,specialist_email,service,checkin_time,consent_sms\n"
        "P002,Jordan,07700 900102,sam.jones@example.org,north,09:15,no\n"
    )
    assert import_caseload(rt, short, rt.clock.now()).updated == 1
    jordan = _people(rt)[1]
    assert (jordan.sms_consent, jordan.checkin_time) == (False, "09:15")


def test_support_starting_before_the_referral_is_refused(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        "participant_id,first_name,phone,specialist_email,referral_date,support_start\n"
        "P001,Alex,07700 900101,sam@example.org,2026-11-01,2026-10-01\n"
        "P002,Jordan,07700 900102,sam@example.org,2099-01-01,\n"
        "P003,Priya,07700 900103,sam@example.org,2026-11-01,2099-05-05\n"
    )
    with pytest.raises(CsvImportError) as refused:
        import_caseload(rt, path, rt.clock.now())
    assert refused.value.errors == [
        "line 2, column support_start: cannot be before the referral date",
        "line 3, column referral_date: cannot be in the future",
        "line 4, column support_start: cannot be more than 60 days ahead",
    ]
    assert _people(rt) == []
