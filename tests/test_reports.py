"""The weekly contact report over a simulated month, with a known answer."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli.commands import main
from assistant.clock import FixedClock
from assistant.db.units import transaction
from assistant.imports.appointments import import_appointments
from assistant.imports.caseload import import_caseload
from assistant.jobs.tick import tick
from assistant.reporting.reports import contact_report, week_bounds
from assistant.runtime import Runtime

from .conftest import Phone


def test_a_month_of_contact(
    rt: Runtime, phone: Phone, clock: FixedClock, caseload_file: Path, tmp_path: Path, db_url: str
) -> None:
    clock.set(datetime(2026, 11, 1, 12, 0, tzinfo=UTC))
    import_caseload(rt, caseload_file, clock.now())
    # Week 45 (2-8 Nov): Alex replies. Week 46: Jordan attends. Week 47: Priya's call is logged. Week 48: Alex again.
    clock.set(datetime(2026, 11, 3, 10, 0, tzinfo=UTC))
    phone.text("+447700900101", "hello")
    appointments = tmp_path / "a.csv"
    appointments.write_text(
        "appointment_id,participant_id,starts_at,kind,outcome\nA1,P002,2026-11-11 10:00,meeting,attended\n"
    )
    clock.set(datetime(2026, 11, 12, 9, 0, tzinfo=UTC))
    import_appointments(rt, appointments, clock.now())
    env = {"ASSISTANT_DATABASE_URL": db_url, "ASSISTANT_CONSOLE_LOG": str(tmp_path / "sms.jsonl")}
    result = CliRunner().invoke(
        main,
        [
            "log-contact",
            "P003",
            "--channel",
            "phone",
            "--by",
            "chris.lee@example.org",
            "--at",
            "2026-11-18T15:00:00+00:00",
            "--note",
            "Talked about the CV",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    clock.set(datetime(2026, 11, 24, 18, 0, tzinfo=UTC))
    phone.text("+447700900101", "good week")
    tick(rt, datetime(2026, 11, 30, 12, 0, tzinfo=UTC))

    expected = {"2026-W45": {"P001"}, "2026-W46": {"P002"}, "2026-W47": {"P003"}, "2026-W48": {"P001"}}
    for week, contacted in expected.items():
        with transaction(rt.engine) as db:
            rows = contact_report(db, week, "Europe/London")
        seen = {pid for row in rows for pid, how in row.evidence.items() if how}
        assert seen == contacted, week
    with transaction(rt.engine) as db:
        rows = contact_report(db, "2026-W46", "Europe/London")
    sam = next(r for r in rows if r.email == "sam.jones@example.org")
    assert (sam.participants, sam.contacted, sam.percent) == (2, 1, 50.0)
    assert sam.evidence["P002"] == ["attended"]

    out = CliRunner().invoke(main, ["report", "contact", "--week", "2026-W47", "--csv"], env=env)
    assert out.exit_code == 0, out.output
    table = list(csv.reader(io.StringIO(out.output)))
    assert table[0] == ["week", "specialist", "participants", "contacted", "percent"]
    assert ["2026-W47", "chris.lee@example.org", "1", "1", "100.0"] in table
    assert table[-1] == ["2026-W47", "TOTAL", "3", "1", "33.3"]


def test_bad_weeks_are_refused() -> None:
    for week in ("2026-48", "2026-W54", "last week"):
        with pytest.raises(ValueError):
            week_bounds(week, "Europe/London")
    start, end = week_bounds("2026-W48", "Europe/London")
    assert (start.isoformat(), end.isoformat()) == ("2026-11-23T00:00:00+00:00", "2026-11-30T00:00:00+00:00")
