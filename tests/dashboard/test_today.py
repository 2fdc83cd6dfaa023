"""The specialist's Today list: on the dashboard (one action per item, logged and audited) and by
`assistant today --specialist EMAIL`, most urgent first, each person seen only by those in reach."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlmodel import col, select

from assistant.cli.commands import main
from assistant.clock import FixedClock
from assistant.conversation.inbound import receive_sms
from assistant.db.models import AuditLog, ContactLog, Flag, Participant, StaffTask
from assistant.db.units import transaction
from assistant.imports.caseload import import_caseload

from .conftest import World, csrf

MONDAY = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)


def _task(world: World, external_id: str, kind: str, reason: str, due: datetime) -> int:
    with transaction(world.rt.engine) as db:
        task = StaffTask(
            participant_id=world.ids[external_id],
            kind=kind,
            reason=reason,
            source="dna_followup",
            payload={},
            due_at=due,
            created_at=due,
        )
        db.add(task)
        db.flush()
        assert task.id is not None
        return task.id


@pytest.fixture
def day(world: World, clock: FixedClock, tmp_path: Path) -> World:
    """Sam's Monday: a crisis text, a call and a letter task, a callback, and someone not heard from."""
    extra = tmp_path / "riley.csv"
    extra.write_text(
        "participant_id,first_name,phone,specialist_email,specialist_name,service,team,cohort,checkin_day,checkin_time\n"
        "P006,Riley,07700900106,sam@example.org,Sam Jones,north,blue,out_of_work,Tue,10:30\n"
    )
    import_caseload(world.rt, extra, clock.now())
    with transaction(world.rt.engine) as db:
        riley = db.exec(select(Participant.id).where(Participant.external_id == "P006")).one()
        assert riley is not None
        world.ids["P006"] = riley
    clock.set(MONDAY)
    receive_sms(world.rt, sid="SMcrisis1", sender="+447700900101", body="I can't go on", now=MONDAY)
    receive_sms(world.rt, sid="SMcall1", sender="+447700900102", body="CALL", now=MONDAY - timedelta(hours=1))
    _task(world, "P001", "letter", "Missed appointment: send them a letter", MONDAY - timedelta(days=2))
    _task(world, "P001", "call", "Missed appointment: phone them", MONDAY - timedelta(hours=2))
    _task(world, "P003", "call", "Missed appointment: phone them", MONDAY - timedelta(hours=2))  # Chris's
    _task(world, "P001", "call", "Not due until tomorrow", MONDAY + timedelta(days=1))
    return world


def _groups(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<strong class="nhsuk-tag[^"]*">([^<]+)</strong> <a href="/participants/\d+">(\w+)', page)


def test_most_urgent_first_and_only_my_people(as_user: Any, day: World) -> None:
    client = as_user("sam@example.org")
    page = client.get("/today").get_data(as_text=True)
    assert _groups(page) == [
        ("Urgent flag", "Alex"),
        ("Call", "Alex"),
        ("Letter or email", "Alex"),
        ("Callback", "Jordan"),
        ("Not contacted this week", "Riley"),
    ]
    assert "Priya" not in page and "Not due until tomorrow" not in page
    # A specialist cannot pick someone else's day.
    chris = day.participant("P003").specialist_id
    assert _groups(client.get(f"/today?specialist={chris}").get_data(as_text=True))[0] == ("Urgent flag", "Alex")


def test_a_manager_picks_a_specialist(as_user: Any, day: World) -> None:
    lead = as_user("lead@example.org")
    page = lead.get("/today").get_data(as_text=True)
    assert '<label class="nhsuk-label" for="specialist">Specialist</label>' in page
    chris = day.participant("P003").specialist_id
    page = lead.get(f"/today?specialist={chris}").get_data(as_text=True)
    assert ("Call", "Priya") in _groups(page) and "Alex" not in page
    # Another service's specialist is out of reach: nothing shown.
    kim = as_user("kim@example.org")
    assert "Priya" not in kim.get(f"/today?specialist={chris}").get_data(as_text=True)


def test_doing_a_task_logs_the_contact_and_is_audited(as_user: Any, day: World) -> None:
    client = as_user("sam@example.org")
    with transaction(day.rt.engine) as db:
        call = db.exec(
            select(StaffTask).where(StaffTask.kind == "call", StaffTask.participant_id == day.ids["P001"])
        ).first()
        assert call is not None
    form = {"item": f"task:{call.id}", "channel": "phone", "outcome": "not_reached", "note": "voicemail"}
    assert client.post("/today/done", data=form).status_code == 400  # no CSRF token: refused
    response = client.post("/today/done", data=form | {"csrf_token": csrf(client, "/today")}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Done: contact with Alex logged (could not reach them)" in page
    assert ("Call", "Alex") not in _groups(page)
    with transaction(day.rt.engine) as db:
        done = db.get(StaffTask, call.id)
        assert done is not None and done.status == "done" and done.done_by == "sam@example.org"
        log = db.get(ContactLog, done.contact_log_id)
        assert log is not None and (log.channel, log.outcome, log.automated) == ("phone", "not_reached", False)
        assert "voicemail" in log.note
        [audit] = db.exec(select(AuditLog).where(AuditLog.action == "today_done")).all()
        assert audit.user_email == "sam@example.org" and audit.detail["item"] == f"task:{call.id}"
    # Done twice (a second tab): nothing more is logged.
    client.post("/today/done", data=form | {"csrf_token": csrf(client, "/today")})
    with transaction(day.rt.engine) as db:
        assert len(db.exec(select(ContactLog).where(ContactLog.logged_by == "sam@example.org")).all()) == 1


def test_someone_elses_item_is_not_found_and_nothing_is_logged(as_user: Any, day: World) -> None:
    client = as_user("sam@example.org")
    with transaction(day.rt.engine) as db:
        theirs = db.exec(select(StaffTask).where(StaffTask.participant_id == day.ids["P003"])).one()
    form = {"item": f"task:{theirs.id}", "channel": "phone", "outcome": "reached", "csrf_token": csrf(client, "/today")}
    assert client.post("/today/done", data=form).status_code == 404
    with transaction(day.rt.engine) as db:
        assert db.exec(select(ContactLog)).all() == []
        assert db.get(StaffTask, theirs.id).status == "open"  # type: ignore[union-attr]


def test_an_urgent_flag_stays_until_they_are_reached(as_user: Any, day: World) -> None:
    client = as_user("sam@example.org")
    with transaction(day.rt.engine) as db:
        crisis = db.exec(select(Flag).where(Flag.kind == "crisis")).one()
    base = {"item": f"flag:{crisis.id}", "channel": "phone"}
    client.post("/today/done", data=base | {"outcome": "not_reached", "csrf_token": csrf(client, "/today")})
    page = client.get("/today").get_data(as_text=True)
    assert _groups(page)[0] == ("Urgent flag", "Alex") and "(acknowledged)" in page
    client.post("/today/done", data=base | {"outcome": "reached", "csrf_token": csrf(client, "/today")})
    assert ("Urgent flag", "Alex") not in _groups(client.get("/today").get_data(as_text=True))
    with transaction(day.rt.engine) as db:
        flag = db.get(Flag, crisis.id)
        assert flag is not None and flag.status == "resolved" and flag.resolved_by == "sam@example.org"
        outcomes = db.exec(select(ContactLog.outcome).order_by(col(ContactLog.id))).all()
        assert outcomes == ["not_reached", "reached"]


def test_today_by_command(day: World, db_url: str, tmp_path: Path) -> None:
    env = {
        "ASSISTANT_DATABASE_URL": db_url,
        "ASSISTANT_CONSOLE_LOG": str(tmp_path / "sms.jsonl"),
        "TWILIO_AUTH_TOKEN": "cli-token",
        "ASSISTANT_PUBLIC_URL": "https://assistant.example.org",
    }
    args = ["today", "--specialist", "sam@example.org", "--now", MONDAY.isoformat()]
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Today for Sam Jones (sam@example.org), Mon 30 Nov 2026: 5 things to do"
    assert [line.split()[1] for line in lines[1:]] == ["URGENT", "CALL", "LETTER", "CALLBACK", "NOT"]
    assert all("Alex" in line for line in lines[1:4]) and "Jordan" in lines[4] and "Riley" in lines[5]
    assert "Priya" not in result.output
    unknown = CliRunner().invoke(main, ["today", "--specialist", "nobody@example.org"], env=env)
    assert unknown.exit_code != 0 and "no specialist" in unknown.output
