"""The journey's ends outside a conversation: referral columns on import, the report's days,
campaigns after support ends, and the settings' checks."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from assistant.cli.journey import render
from assistant.clock import FixedClock
from assistant.contact.campaigns import create, run_due
from assistant.db.models import CampaignRecipient, DueTask, Participant, Service
from assistant.db.service_settings import ServiceSettings
from assistant.db.units import transaction
from assistant.imports.caseload import import_caseload
from assistant.imports.caseload_csv import CsvImportError
from assistant.jobs.tick import tick
from assistant.reporting.journey import journey_rows
from assistant.runtime import Runtime

from .conftest import Phone

COLUMNS = ("participant_id", "first_name", "phone", "specialist_email", "specialist_name", "service")
REFERRAL = ("referral_date", "referral_source")


def _import(rt: Runtime, tmp_path: Path, rows: str, now: datetime, extra: tuple[str, ...] = REFERRAL) -> None:
    """A caseload file of `rows` under the columns every file has and the `extra` ones, imported."""
    path = tmp_path / "caseload.csv"
    path.write_text(",".join(COLUMNS + extra) + "\n" + rows, encoding="utf-8")
    import_caseload(rt, path, now)


def test_import_takes_referral_and_plans_one_welcome(rt: Runtime, tmp_path: Path, clock: FixedClock) -> None:
    _import(rt, tmp_path, "P1,Alex,07700900101,sam@example.org,Sam Jones,north,2026-11-20,gp\n", clock.now())
    _import(rt, tmp_path, "P1,Alex,07700900101,sam@example.org,Sam Jones,north\n", clock.now(), extra=())
    with transaction(rt.engine) as db:
        alex = db.exec(select(Participant)).one()
        welcomes = db.exec(select(DueTask).where(DueTask.kind == "welcome")).all()
    assert (alex.referral_date, alex.referral_source) == (date(2026, 11, 20), "gp")  # a file without them keeps them
    assert len(welcomes) == 1


def test_import_refuses_a_source_not_on_the_list(rt: Runtime, tmp_path: Path, clock: FixedClock) -> None:
    with pytest.raises(CsvImportError) as refused:
        _import(rt, tmp_path, "P1,Alex,07700900101,sam@example.org,Sam,north,20/11/2026,a friend\n", clock.now())
    assert "line 2, column referral_date: not a date" in str(refused.value)
    with pytest.raises(CsvImportError) as refused:
        _import(rt, tmp_path, "P1,Alex,07700900101,sam@example.org,Sam,north,2026-11-20,a friend\n", clock.now())
    assert "line 2, column referral_source: must be one of talking_therapies, gp" in str(refused.value)


def test_no_welcome_for_a_caseload_moved_over(rt: Runtime, tmp_path: Path, clock: FixedClock) -> None:
    _import(rt, tmp_path, "P1,Alex,07700900101,sam@example.org,Sam,north,,\n", clock.now())
    with transaction(rt.engine) as db:
        assert db.exec(select(DueTask).where(DueTask.kind == "welcome")).all() == []


def test_report_days_from_referral(rt: Runtime, tmp_path: Path, clock: FixedClock, phone: Phone) -> None:
    _import(
        rt,
        tmp_path,
        "P1,Alex,07700900101,sam@example.org,Sam,north,2026-11-16,gp\n"
        "P2,Jordan,07700900102,sam@example.org,Sam,north,2026-11-20,other\n"
        "P3,Priya,07700900103,sam@example.org,Sam,north,,\n",
        clock.now(),
    )
    tick(rt, clock.now())  # Sunday noon: the welcomes go
    clock.set(clock.now() + timedelta(days=2))
    phone.text("+447700900101", "thanks Sam")
    with transaction(rt.engine) as db:
        alex = db.exec(select(Participant).where(Participant.external_id == "P1")).one()
        alex.support_started_on = date(2026, 11, 30)
        db.add(alex)
        service_id = alex.service_id
    with transaction(rt.engine) as db:
        summary = journey_rows(db, service_id)
    by_id = {r.external_id: r for r in summary.rows}
    assert (by_id["P1"].days_to_first_contact, by_id["P1"].days_to_first_reply, by_id["P1"].days_to_start) == (6, 8, 14)
    assert (by_id["P2"].days_to_first_contact, by_id["P2"].days_to_first_reply, by_id["P2"].days_to_start) == (
        2,
        None,
        None,
    )
    assert by_id["P3"].days_to_first_contact is None  # no referral date: missing, not 0
    assert summary.median_days("days_to_first_contact") == 4 and summary.missing("days_to_first_reply") == 1
    lines = render(summary)
    assert "P1,2026-11-16,gp,6,8,14,-,0,-" in lines
    assert "days from referral to first reply: median 8, not yet 1" in lines


def test_campaign_copy_withdrawn_after_support_ended(rt: Runtime, tmp_path: Path, clock: FixedClock) -> None:
    """A planned end date passed between planning a campaign and its sending: the copy is withdrawn."""
    _import(
        rt,
        tmp_path,
        "P1,Alex,07700900101,sam@example.org,Sam,north,2026-11-25\nP2,Jordan,07700900102,sam@example.org,Sam,north,\n",
        clock.now(),
        extra=("support_end",),
    )
    with transaction(rt.engine) as db:
        alex = db.exec(select(Participant).where(Participant.external_id == "P1")).one()
        service = db.get(Service, alex.service_id)
        assert service is not None
        service.settings = {"duty_contact_email": "duty@example.org"}
        db.add(service)
        create(
            db,
            service_id=alex.service_id,
            name="CV clinic",
            text="Hi {{ first_name }}, there is a CV clinic on Friday. {{ specialist_name }}",
            audience={},
            send_at=datetime.fromisoformat("2026-11-26T10:00:00+00:00"),
            created_by="admin@example.org",
            now=clock.now(),
        )
    clock.set(datetime.fromisoformat("2026-11-26T10:00:00+00:00"))
    run_due(rt, clock.now())
    with transaction(rt.engine) as db:
        copies = {c.participant_id: (c.status, c.reason) for c in db.exec(select(CampaignRecipient)).all()}
    assert copies[alex.id] == ("withdrawn", "support ended")
    assert [status for status, _ in copies.values()].count("queued") + [s for s, _ in copies.values()].count(
        "sent"
    ) == 1


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="in_work_checkin_time"):
        ServiceSettings.from_json({"in_work_checkin_time": "12:30"})
    with pytest.raises(ValueError, match="referral_sources"):
        ServiceSettings.from_json({"referral_sources": ["GP Surgery"]})
    with pytest.raises(ValueError, match="public_name"):
        ServiceSettings.from_json({"public_name": "Team \u2019s"})
