"""The weekly contact report over a simulated month, with a known answer for every participant and
week: replies, attended appointments and logged contacts count; texts and missed appointments are
attempts; paused, ended and erased people are not counted; in-work people are measured against
their own four-weekly cadence. And caseloads against the cap scaled by FTE."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import select

from assistant.cli.commands import main
from assistant.clock import FixedClock
from assistant.db.models import Appointment, ContactLog, Message, Participant, Service, Specialist
from assistant.db.units import transaction
from assistant.imports.caseload import import_caseload
from assistant.reporting.caseload_caps import caseload_against_cap
from assistant.reporting.contact_evidence import ATTEMPTED, CONTACTED, NOT_ATTEMPTED, week_monday, weekly_contact
from assistant.runtime import Runtime

CASELOAD = (
    "participant_id,first_name,phone,specialist_email,specialist_name,service,cohort,checkin_day,checkin_time\n"
    "P001,Alex,07700900101,sam@example.org,Sam Jones,north,out_of_work,Tue,10:30\n"
    "P002,Jordan,07700900102,sam@example.org,Sam Jones,north,in_work,Wed,12:30\n"
    "P003,Priya,07700900103,chris@example.org,Chris Lee,north,out_of_work,Tue,11:00\n"
    "P004,Morgan,07700900104,chris@example.org,Chris Lee,north,out_of_work,Mon,10:00\n"
    "P005,Casey,07700900105,sam@example.org,Sam Jones,north,out_of_work,Mon,10:00\n"
    "P006,Dana,07700900106,sam@example.org,Sam Jones,north,out_of_work,Mon,10:00\n"
    "P007,Eli,07700900107,chris@example.org,Chris Lee,north,in_work,Mon,10:00\n"
    "P008,Fran,07700900108,sam@example.org,Sam Jones,north,out_of_work,Mon,10:00\n"
    "P009,Gale,07700900109,sam@example.org,Sam Jones,north,out_of_work,Mon,10:00\n"
)
TZ = "Europe/London"


def at(day: int, hour: int = 10, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


# What each participant's record shows, week by week (weeks of 2, 9, 16 and 23 November 2026).
EXPECTED = {
    "2026-11-02": {
        "P001": CONTACTED, "P002": CONTACTED, "P003": NOT_ATTEMPTED, "P004": NOT_ATTEMPTED,
        "P006": NOT_ATTEMPTED, "P007": CONTACTED, "P008": CONTACTED,
    },
    "2026-11-09": {
        "P001": NOT_ATTEMPTED, "P002": CONTACTED, "P003": CONTACTED, "P004": NOT_ATTEMPTED,
        "P006": CONTACTED, "P007": CONTACTED, "P008": NOT_ATTEMPTED,
    },
    "2026-11-16": {
        "P001": NOT_ATTEMPTED, "P002": CONTACTED, "P003": NOT_ATTEMPTED, "P004": CONTACTED,
        "P006": NOT_ATTEMPTED, "P007": NOT_ATTEMPTED, "P008": NOT_ATTEMPTED,
    },
    "2026-11-23": {
        "P001": CONTACTED, "P002": CONTACTED, "P003": ATTEMPTED, "P004": NOT_ATTEMPTED,
        "P007": ATTEMPTED, "P008": CONTACTED,
    },
}  # fmt: skip


def _seed(rt: Runtime, tmp_path: Path) -> dict[str, int]:
    path = tmp_path / "caseload.csv"
    path.write_text(CASELOAD)
    import_caseload(rt, path, at(1, 9, month=10))
    with transaction(rt.engine) as db:
        people = {p.external_id: p for p in db.exec(select(Participant)).all()}
        ids = {k: p.id for k, p in people.items()}

        def text(pid: str, direction: str, when: datetime, status: str, key: str | None = None) -> None:
            body = "hi" if direction == "in" else "How are things?"
            db.add(Message(participant_id=ids[pid], direction=direction, body=body, at=when, status=status,
                           message_key=key, phone=people[pid].phone))  # fmt: skip

        text("P001", "in", at(3), "received")
        text("P001", "in", at(24, 18), "received")
        db.add(ContactLog(participant_id=ids["P002"], at=at(5), channel="phone", logged_by="sam@example.org"))
        text("P003", "out", at(10), "delivered", "checkin/ask")
        text("P003", "in", at(10, 11), "received")
        text("P003", "out", at(24, 11), "delivered", "checkin/ask")
        text("P003", "out", at(26, 11), "undelivered", "checkin/nudge")
        text("P003", "out", at(27, 11), "expired", "checkin/nudge")  # never left: no attempt
        text("P004", "in", at(18), "received")
        text("P005", "in", at(24), "received")  # paused: not counted whatever happens
        text("P006", "in", at(12), "received")
        text("P006", "in", at(24), "received")  # support ended on the 20th: not counted that week
        text("P007", "in", at(20, 10, month=10), "received")  # four-weekly: counts until mid-November
        db.add(Appointment(participant_id=ids["P007"], external_id="A7", starts_at=at(25, 9), kind="meeting",
                           outcome="dna"))  # fmt: skip
        db.add(Appointment(participant_id=ids["P008"], external_id="A8", starts_at=at(27, 14), kind="meeting",
                           outcome="attended"))  # fmt: skip
        db.add(ContactLog(participant_id=ids["P008"], at=at(4), channel="video", logged_by="sam@example.org"))
        text("P008", "in", at(4, 12), "received")
        text("P009", "in", at(24), "received")
        people["P005"].paused = True
        people["P006"].support_ends_on = date(2026, 11, 20)
        people["P009"].erased_at = at(26)
        service = db.get(Service, people["P001"].service_id)
        assert service is not None
        service.settings = {"caseload_cap": 5, "duty_contact_email": "duty@example.org"}
        db.add(service)
        for person in people.values():
            db.add(person)
    return ids


def test_a_month_of_weekly_contact_with_a_known_answer(rt: Runtime, tmp_path: Path) -> None:
    _seed(rt, tmp_path)
    for week, expected in EXPECTED.items():
        with transaction(rt.engine) as db:
            report = weekly_contact(db, week, TZ, select(Participant))
        assert {p.external_id: p.outcome for p in report.people} == expected, week
    with transaction(rt.engine) as db:
        report = weekly_contact(db, "2026-W48", TZ, select(Participant))
        specialists = {s.email: s.id for s in db.exec(select(Specialist)).all()}
    assert report.excluded == {"ended": 1, "erased": 1, "paused": 1}
    people = {p.external_id: p for p in report.people}
    assert people["P001"].contacted == ["reply"]
    assert people["P002"].contacted == ["logged"] and people["P002"].weeks == 4
    assert people["P008"].contacted == ["attended"]
    assert [(a.what, a.status) for a in people["P003"].attempts] == [
        ("checkin/ask", "delivered"),
        ("checkin/nudge", "undelivered"),
    ]
    assert [(a.what, a.status) for a in people["P007"].attempts] == [("appointment not attended", "dna")]
    total = report.tally()
    assert (total.active, total.contacted, total.attempted, total.not_attempted, total.percent) == (6, 3, 2, 1, 50.0)
    assert total.by_kind == {"reply": 1, "attended": 1, "logged": 1}
    sam, chris = report.tally(specialists["sam@example.org"]), report.tally(specialists["chris@example.org"])
    assert (sam.active, sam.contacted) == (3, 3)
    assert (chris.active, chris.contacted, chris.attempted, chris.not_attempted) == (3, 0, 2, 1)
    in_work = report.tally(cohort="in_work")
    assert (in_work.active, in_work.contacted, in_work.attempted) == (2, 1, 1)
    assert [p.external_id for p in report.not_reached()] == ["P003", "P004", "P007"]


def test_the_cli_report_and_its_csv_carry_ids_not_names(rt: Runtime, tmp_path: Path, db_url: str) -> None:
    _seed(rt, tmp_path)
    env = {"ASSISTANT_DATABASE_URL": db_url, "ASSISTANT_CONSOLE_LOG": str(tmp_path / "sms.jsonl")}
    out = CliRunner().invoke(main, ["report", "contact", "--week", "2026-11-25", "--csv"], env=env)
    assert out.exit_code == 0, out.output
    assert not any(name in out.output for name in ("Alex", "Priya", "Morgan", "Eli", "0770"))
    rows = list(csv.reader(io.StringIO(out.output)))
    table, people = rows[: rows.index([])], rows[rows.index([]) + 1 :]
    assert table[0][:5] == ["week_of", "specialist", "cohort", "active", "contacted"]
    assert ["2026-11-23", "TOTAL", "all", "6", "3", "1", "1", "1", "2", "1", "50.0"] in table
    assert ["2026-11-23", "chris@example.org", "in_work", "1", "0", "0", "0", "0", "1", "0", "0.0"] in table
    listed = {row[1]: row for row in people}
    assert set(listed) == {"participant_id", "P003", "P004", "P007"}
    assert listed["P003"][5] == "attempted" and listed["P003"][6].count("checkin/") == 2
    assert listed["P007"][4] == "4"  # measured over their own four weeks
    text = CliRunner().invoke(main, ["report", "contact", "--week", "2026-W48"], env=env)
    assert text.exit_code == 0, text.output
    assert "In-work participants are measured against their own agreed check-in interval" in text.output
    assert "P003 chris@example.org: attempted" in text.output
    bad = CliRunner().invoke(main, ["report", "contact", "--week", "last week"], env=env)
    assert bad.exit_code != 0 and "not a date" in bad.output


def test_weeks_are_read_as_a_day_in_them_or_an_iso_week() -> None:
    assert week_monday("2026-11-25") == week_monday("2026-W48") == date(2026, 11, 23)
    assert week_monday("2026-11-29") == date(2026, 11, 23)  # a Sunday belongs to the week before it
    for week in ("2026-48", "2026-W54", "2026-02-30", "last week"):
        with pytest.raises(ValueError):
            week_monday(week)


def test_caseloads_count_active_people_against_a_cap_scaled_by_fte(
    rt: Runtime, tmp_path: Path, clock: FixedClock, db_url: str
) -> None:
    _seed(rt, tmp_path)
    env = {"ASSISTANT_DATABASE_URL": db_url, "ASSISTANT_CONSOLE_LOG": str(tmp_path / "sms.jsonl")}
    out = CliRunner().invoke(main, ["set-fte", "chris@example.org", "0.5"], env=env)
    assert out.exit_code == 0, out.output
    assert CliRunner().invoke(main, ["set-fte", "chris@example.org", "1.5"], env=env).exit_code != 0
    clock.set(at(30))
    with transaction(rt.engine) as db:
        specialists = list(db.exec(select(Specialist).order_by(Specialist.email)).all())  # type: ignore[arg-type]
        rows = {r.specialist.email: r for r in caseload_against_cap(db, specialists, 5, clock.now(), TZ)}
    # Sam: P001, P002, P008 active (P005 paused, P006 ended, P009 erased); Chris: three, at half time.
    assert (rows["sam@example.org"].active, rows["sam@example.org"].cap, rows["sam@example.org"].over) == (
        3,
        5.0,
        False,
    )
    assert (rows["chris@example.org"].active, rows["chris@example.org"].fte, rows["chris@example.org"].cap) == (
        3,
        0.5,
        2.5,
    )
    assert rows["chris@example.org"].over
    report = CliRunner().invoke(main, ["report", "caseload", "--service", "north", "--on", "2026-11-30"], env=env)
    assert report.exit_code == 0, report.output
    assert "cap (5 per full-time specialist" in report.output
    assert [line.endswith("OVER") for line in report.output.splitlines()[1:]] == [True, False]  # Chris, then Sam
