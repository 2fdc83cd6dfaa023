"""The service settings page and CSV imports on the dashboard: who may, what is checked, what is recorded."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from markupsafe import escape
from sqlmodel import col, select

from assistant.db.models import Appointment, AuditLog, DueTask, ImportRun, Participant, Service
from assistant.db.service_settings import RULES, ServiceSettings
from assistant.db.units import transaction
from assistant.imports.runs import ImportOutcome, run_import

from .conftest import NORTH_DUTY, World, csrf

ADMIN, LEAD, SAM, KIM = "admin@example.org", "lead@example.org", "sam@example.org", "kim@example.org"


def _settings(world: World, slug: str = "north") -> ServiceSettings:
    with transaction(world.rt.engine) as db:
        service = db.exec(select(Service).where(Service.slug == slug)).one()
        return ServiceSettings.from_json(service.settings)


def _form(settings: ServiceSettings, token: str, **changes: str) -> dict[str, Any]:
    """The settings form as the page fills it in, with some fields changed."""
    data: dict[str, Any] = {"csrf_token": token}
    for key, value in settings.to_json().items():
        if key == "rules_off":
            data["rules_on"] = [r for r in RULES if r not in value]  # every rule the page offers
        elif key == "questionnaire_instruments":
            data[key] = value
        elif isinstance(value, bool):
            if value:
                data[key] = "yes"
        elif isinstance(value, list):
            data[key] = ", ".join(str(v) for v in value)
        else:
            data[key] = str(value)
    data.update(changes)
    return data


def _audit(world: World, action: str) -> list[AuditLog]:
    with transaction(world.rt.engine) as db:
        return list(db.exec(select(AuditLog).where(AuditLog.action == action)).all())


# --- who may ----------------------------------------------------------------------------------


@pytest.mark.parametrize("email,allowed", [(SAM, False), (LEAD, False), (ADMIN, True), (KIM, False)])
def test_settings_page_is_for_service_admins(as_user: Any, email: str, allowed: bool) -> None:
    client = as_user(email)
    assert client.get("/settings").status_code == (200 if allowed else 404)
    if not allowed:  # not even with a good token: the same 404 as a page that does not exist, and nothing changes
        before = _settings_for_user(client)
        response = client.post("/settings", data={"csrf_token": csrf(client, "/"), "caseload_cap": "5"})
        assert response.status_code == 404
        assert _settings_for_user(client) == before


def _settings_for_user(client: Any) -> Any:
    app = client.application
    with transaction(app.extensions["assistant"].engine) as db:
        return {s.slug: s.settings for s in db.exec(select(Service)).all()}


@pytest.mark.parametrize("email,status", [(SAM, 404), (LEAD, 200), (ADMIN, 200), (KIM, 404)])
def test_imports_list_is_for_leads_and_admins(as_user: Any, email: str, status: int) -> None:
    assert as_user(email).get("/imports").status_code == status


def test_team_leads_cannot_upload(as_user: Any, world: World) -> None:
    client = as_user(LEAD)
    token = csrf(client, "/")
    data = {"csrf_token": token, "kind": "caseload", "file": (io.BytesIO(b"participant_id\n"), "x.csv")}
    assert client.post("/imports", data=data, content_type="multipart/form-data").status_code == 404
    with transaction(world.rt.engine) as db:
        assert db.exec(select(ImportRun)).all() == []


@pytest.mark.parametrize("path", ["/settings", "/imports"])
def test_admin_posts_without_or_with_a_wrong_csrf_token_are_refused(as_user: Any, world: World, path: str) -> None:
    client = as_user(ADMIN)
    before = _settings(world)
    upload = b"appointment_id,participant_id,starts_at,kind\nA1,P001,2026-12-01 10:00,meeting\n"
    for token in (None, "forged"):
        data: dict[str, Any] = {"caseload_cap": "7", "kind": "appointments", "file": (io.BytesIO(upload), "a.csv")}
        if token:
            data["csrf_token"] = token
        assert client.post(path, data=data, content_type="multipart/form-data").status_code == 400
    assert _settings(world) == before
    with transaction(world.rt.engine) as db:
        assert db.exec(select(ImportRun)).all() == [] and db.exec(select(Appointment)).all() == []


def _dashboard_import(world: World, slug: str, kind: str, data: bytes, *, file_name: str, by: str) -> ImportOutcome:
    """An import as the dashboard runs it for a user of the `slug` service."""
    with transaction(world.rt.engine) as db:
        service = db.exec(select(Service).where(Service.slug == slug)).one()
    now = world.rt.clock.now()
    return run_import(world.rt, kind, data, file_name=file_name, by=by, via="dashboard", now=now, service=service)


def test_another_services_import_and_guessed_ids_are_404(as_user: Any, world: World, tmp_path: Path) -> None:
    bad = b"participant_id,first_name,phone,specialist_email\nP005,Casey,not a phone,kim@example.org\n"
    run = _dashboard_import(world, "south", "caseload", bad, file_name="south.csv", by=KIM).run
    client = as_user(ADMIN)
    for path in (f"/imports/{run.id}", f"/imports/{run.id}/errors.csv", "/imports/999999", "/imports/abc"):
        assert client.get(path).status_code == 404, path
    assert "south.csv" not in client.get("/imports").get_data(as_text=True)


# --- settings ----------------------------------------------------------------------------------


def test_admin_changes_settings_audited_and_in_effect(as_user: Any, world: World) -> None:
    client = as_user(ADMIN)
    page = client.get("/settings").get_data(as_text=True)
    for field in ServiceSettings.__dataclass_fields__:
        assert f'id="{field}' in page, field  # every setting is on the form
    current = _settings(world)
    response = client.post(
        "/settings",
        data=_form(
            current,
            csrf(client, "/settings"),
            caseload_cap="24",
            quiet_from="19:00",
            duty_contact_email="duty@example.org",
        ),
    )
    assert response.status_code == 302
    assert "Settings saved" in client.get("/settings").get_data(as_text=True)
    now = _settings(world)
    assert (now.caseload_cap, now.quiet_from, now.duty_contact_email) == (24, "19:00", "duty@example.org")
    assert _settings(world, "south") == ServiceSettings()  # another service is untouched
    [entry] = _audit(world, "service_settings")
    assert entry.user_email == ADMIN
    assert entry.detail["changes"] == {
        "caseload_cap": {"old": 20, "new": 24},
        "quiet_from": {"old": "20:00", "new": "19:00"},
        "duty_contact_email": {"old": NORTH_DUTY, "new": "duty@example.org"},
    }
    # In effect: the caseload page warns against the new cap.
    assert "cap is 24" in as_user(SAM).get("/").get_data(as_text=True)


def test_switches_and_rules_turn_off_and_on(as_user: Any, world: World) -> None:
    client = as_user(ADMIN)
    data = _form(_settings(world), csrf(client, "/settings"))
    data.pop("send_on_weekends")  # an unticked box is not sent
    data["rules_on"] = ["not_responding", "reply_rhythm", "unreachable"]
    data["questionnaire_instruments"] = ["phq9"]
    assert client.post("/settings", data=data).status_code == 302
    now = _settings(world)
    assert now.send_on_weekends is False
    assert now.rules_off == ("not_great_weeks", "repeated_dna")
    assert now.questionnaire_instruments == ("phq9",)
    with transaction(world.rt.engine) as db:  # questionnaires planned for the service, as the CLI does
        planned = db.exec(select(DueTask).where(DueTask.kind == "questionnaire", DueTask.status == "pending")).all()
        north = {world.ids[p] for p in ("P001", "P002", "P003", "P004")}
        assert {t.participant_id for t in planned} == north


@pytest.mark.parametrize(
    "changes,fields",
    [
        ({"caseload_cap": "lots"}, ["caseload_cap"]),
        ({"caseload_cap": "0"}, ["caseload_cap"]),
        ({"quiet_until": "25:00"}, ["quiet_until"]),
        ({"quiet_until": "21:00"}, ["quiet_until"]),  # later than the 20:00 end: a rule between two fields
        ({"reminder_days_before": "3, soon"}, ["reminder_days_before"]),
        (
            {"duty_contact_email": "a@b.org, c@d.org", "dna_ladder": "sms:0,call:3"},
            ["duty_contact_email", "dna_ladder"],
        ),
        ({"holiday_region": "FRA"}, ["holiday_region"]),
        ({"nation": "cornwall"}, ["nation"]),
        ({"duty_contact_phone": "07700900123"}, ["duty_contact_phone"]),
        ({"dna_times": "10:00, 1400"}, ["dna_times"]),
        # A field that does not parse does not hide another that parses but is out of range.
        ({"caseload_cap": "abc", "escalate_after_minutes": "1"}, ["caseload_cap", "escalate_after_minutes"]),
    ],
)
def test_bad_settings_show_each_error_and_change_nothing(
    as_user: Any, world: World, changes: dict[str, str], fields: list[str]
) -> None:
    client = as_user(ADMIN)
    before = _settings(world)
    response = client.post(
        "/settings", data=_form(before, csrf(client, "/settings"), **({"caseload_cap": "25"} | changes))
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "There is a problem: nothing was saved" in page
    for field in fields:
        assert f'id="{field}-error"' in page and f'href="#{field}"' in page, field
    assert page.count("nhsuk-error-message") == len(fields)
    for key, value in changes.items():  # what was typed is shown again, to correct
        if key not in ("holiday_region", "nation"):  # a choice from a list, not typed
            assert f'value="{escape(value)}"' in page, key
    assert _settings(world) == before
    assert _audit(world, "service_settings") == []


def test_reminder_timings_re_plan_upcoming_reminders_from_the_dashboard_and_the_cli(
    as_user: Any, world: World, tmp_path: Path
) -> None:
    start = world.rt.clock.now() + timedelta(days=10)
    csv_text = f"appointment_id,participant_id,starts_at,kind\nA1,P001,{start:%Y-%m-%d} 14:00,meeting\n"
    assert _dashboard_import(world, "north", "appointments", csv_text.encode(), file_name="a.csv", by=ADMIN).report

    def reminders() -> list[int]:
        with transaction(world.rt.engine) as db:
            tasks = db.exec(select(DueTask).where(DueTask.kind == "appt_reminder", DueTask.status == "pending")).all()
            return sorted(t.payload["days_before"] for t in tasks)

    assert reminders() == [1, 3]
    client = as_user(ADMIN)
    assert (
        client.post(
            "/settings", data=_form(_settings(world), csrf(client, "/settings"), reminder_days_before="7, 2")
        ).status_code
        == 302
    )
    assert reminders() == [2, 7]
    # The CLI goes the same way.
    from assistant.cli.commands import main

    env = {"ASSISTANT_DATABASE_URL": world.rt.settings.database_url}
    now = world.rt.clock.now().isoformat()
    result = CliRunner().invoke(main, ["service-settings", "north", "reminder_days_before=5", "--now", now], env=env)
    assert result.exit_code == 0, result.output
    assert reminders() == [5]
    entries = _audit(world, "service_settings")
    assert [e.detail["changes"]["reminder_days_before"]["new"] for e in entries] == [[7, 2], [5]]
    assert entries[1].user_email.startswith("cli")


def test_a_service_without_a_duty_contact_is_refused_on_the_dashboard_and_the_cli(as_user: Any, world: World) -> None:
    """Crisis handling is always on and questionnaires ask about self-harm: no duty contact, no change."""
    client = as_user(ADMIN)
    before = _settings(world)
    # Taking the duty contact away, with or without turning questionnaires on: refused, naming what is missing.
    response = client.post("/settings", data=_form(before, csrf(client, "/settings"), duty_contact_email=""))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Crisis handling needs a duty contact: set &#39;Duty contact email&#39;" in page
    assert 'id="duty_contact_email-error"' in page
    data = _form(before, csrf(client, "/settings"), duty_contact_email="")
    data["questionnaire_instruments"] = ["phq9", "gad7"]
    page = client.post("/settings", data=data).get_data(as_text=True)
    assert (
        "Questionnaires need a duty contact: set &#39;Duty contact email&#39; (and &#39;Duty contact phone&#39;" in page
    )
    assert 'id="duty_contact_email-error"' in page and 'id="questionnaire_instruments-error"' in page
    # A bad field beside the missing duty contact: both are named in the one refusal.
    from assistant.contact.settings_change import SettingsError, check

    with pytest.raises(SettingsError) as refused:
        check(before, {"duty_contact_email": "", "caseload_cap": 0})
    assert sorted(refused.value.errors) == ["caseload_cap", "duty_contact_email"]
    assert _settings(world) == before and _audit(world, "service_settings") == []
    # A service that has none yet (made by an import) is told so, and can change nothing else until it names one.
    with transaction(world.rt.engine) as db:
        north = db.exec(select(Service).where(Service.slug == "north")).one()
        north.settings = {}
        db.add(north)
    assert "No duty contact" in client.get("/settings").get_data(as_text=True)
    response = client.post("/settings", data=_form(_settings(world), csrf(client, "/settings"), caseload_cap="24"))
    assert response.status_code == 400 and _settings(world).caseload_cap == 20
    # The CLI goes the same way, with the same words.
    from assistant.cli.commands import main

    env = {"ASSISTANT_DATABASE_URL": world.rt.settings.database_url}
    result = CliRunner().invoke(main, ["service-settings", "south", "questionnaire_instruments=phq9"], env=env)
    assert result.exit_code != 0
    assert "questionnaires need a duty contact: set duty_contact_email (and duty_contact_phone for texts)" in (
        result.output
    )
    result = CliRunner().invoke(main, ["service-settings", "south", "caseload_cap=24"], env=env)
    assert result.exit_code != 0 and "crisis handling needs a duty contact" in result.output
    assert _settings(world, "south") == ServiceSettings()
    result = CliRunner().invoke(
        main,
        ["service-settings", "south", "duty_contact_email=duty@south.example.org", "questionnaire_instruments=phq9"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert _settings(world, "south").questionnaire_instruments == ("phq9",)
    # Naming one on the dashboard lets the change through, and the warning goes.
    data = _form(_settings(world), csrf(client, "/settings"), caseload_cap="24", duty_contact_email=NORTH_DUTY)
    assert client.post("/settings", data=data).status_code == 302
    assert "No duty contact" not in client.get("/settings").get_data(as_text=True)
    assert _settings(world).caseload_cap == 24


# --- imports -----------------------------------------------------------------------------------


def _upload(client: Any, kind: str, body: bytes, name: str = "upload.csv") -> Any:
    data = {"csrf_token": csrf(client, "/imports"), "kind": kind, "file": (io.BytesIO(body), name)}
    return client.post("/imports", data=data, content_type="multipart/form-data")


def _north_count(world: World) -> int:
    with transaction(world.rt.engine) as db:
        return len(db.exec(select(Participant)).all())


def test_admin_imports_a_caseload_and_it_is_recorded(as_user: Any, world: World) -> None:
    client = as_user(ADMIN)
    body = (
        b"participant_id,first_name,phone,specialist_email\n"
        b"P010,Dana,07700900110,sam@example.org\n"
        b"P001,Alex,07700900101,sam@example.org\n"
    )
    response = _upload(client, "caseload", body, "new people.csv")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Imported new people.csv: 1 created, 0 updated, 1 unchanged." in page
    with transaction(world.rt.engine) as db:
        dana = db.exec(select(Participant).where(Participant.external_id == "P010")).one()
        north = db.exec(select(Service).where(Service.slug == "north")).one()
        assert dana.service_id == north.id  # no service column: the admin's own
        [run] = db.exec(select(ImportRun)).all()
    assert (run.kind, run.file_name, run.imported_by, run.via, run.outcome) == (
        "caseload",
        "new people.csv",
        ADMIN,
        "dashboard",
        "imported",
    )
    assert (run.rows, run.created, run.unchanged, run.errors) == (2, 1, 1, [])
    assert "new people.csv" in as_user(LEAD).get("/imports").get_data(as_text=True)


def test_bad_caseload_shows_every_error_and_changes_nothing(as_user: Any, world: World) -> None:
    client = as_user(ADMIN)
    before = _north_count(world)
    body = (
        b"participant_id,first_name,phone,specialist_email,checkin_day\n"
        b"P010,Dana,07700900110,sam@example.org,Tue\n"
        b"P011,Eli,12345,sam@example.org,Someday\n"
        b"P012,Fay,07700900112,kim@example.org,Mon\n"  # another service's specialist
        b"P013,Gus,07700900105,sam@example.org,Mon\n"  # Casey's number, in the south
    )
    response = _upload(client, "caseload", body, "bad.csv")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "was not imported: nothing was changed" in page
    assert _north_count(world) == before
    with transaction(world.rt.engine) as db:
        [run] = db.exec(select(ImportRun)).all()
    assert run.outcome == "rejected" and run.rows == 4 and run.created == 0
    assert any(e.startswith("line 3, column phone:") for e in run.errors)
    assert any(e.startswith("line 3, column checkin_day:") for e in run.errors)
    report = client.get(f"/imports/{run.id}").get_data(as_text=True)
    assert "<td>3</td><td>phone</td>" in report and "<td>3</td><td>checkin_day</td>" in report
    # The file's other problems only show once the row-by-row ones are fixed; nothing about the south leaks.
    fixed = body.replace(b"12345", b"07700900111").replace(b"Someday", b"Wed")
    second = client.get(_upload(client, "caseload", fixed, "bad2.csv").headers["Location"]).get_data(as_text=True)
    assert (
        "<td>4</td><td>specialist_email</td><td>this email address cannot be used: check it is whole; if it is, whoever runs the assistant can say why</td>"
        in second
    )
    assert (
        "<td>5</td><td>phone</td><td>this number cannot be used: check it is a whole UK phone number; if it is, whoever runs the assistant can say why</td>"
        in second
    )
    assert "P005" not in second and "south" not in second and "Casey" not in second
    assert _north_count(world) == before
    # A team lead sees that it failed, not the rows quoted in the errors.
    lead = as_user(LEAD).get(f"/imports/{run.id}").get_data(as_text=True)
    assert "Not imported" in lead and "column phone" not in lead and "<td>phone</td>" not in lead
    assert as_user(LEAD).get(f"/imports/{run.id}/errors.csv").status_code == 404


def test_rows_for_another_service_are_refused(as_user: Any, world: World) -> None:
    client = as_user(ADMIN)
    body = b"participant_id,first_name,phone,specialist_email,service\nP020,Hal,07700900120,sam@example.org,south\n"
    page = client.get(_upload(client, "caseload", body).headers["Location"]).get_data(as_text=True)
    assert "column service" in page.replace("<td>service</td>", "column service")
    with transaction(world.rt.engine) as db:
        assert db.exec(select(Participant).where(Participant.external_id == "P020")).first() is None


def test_appointment_import_only_matches_the_admins_service(as_user: Any, world: World) -> None:
    client = as_user(ADMIN)
    day = (world.rt.clock.now() + timedelta(days=5)).strftime("%Y-%m-%d")
    body = (
        "appointment_id,participant_id,starts_at,kind\n"
        f"A1,P001,{day} 10:00,meeting\n"
        f"A2,P005,{day} 11:00,meeting\n"  # Casey is in the south: as if she did not exist
    ).encode()
    page = client.get(_upload(client, "appointments", body).headers["Location"]).get_data(as_text=True)
    assert "no participant &#39;P005&#39;" in page or "no participant 'P005'" in page
    with transaction(world.rt.engine) as db:
        assert db.exec(select(Appointment)).all() == []
    good = body.split(b"\n")
    ok = client.get(_upload(client, "appointments", b"\n".join(good[:2]) + b"\n").headers["Location"])
    assert "1 created" in ok.get_data(as_text=True)
    with transaction(world.rt.engine) as db:
        assert [a.external_id for a in db.exec(select(Appointment)).all()] == ["A1"]


def test_upload_limits_and_bad_files(as_user: Any, world: World) -> None:
    client = as_user(ADMIN)
    response = client.post(
        "/imports",
        data={"csrf_token": csrf(client, "/imports"), "kind": "caseload"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400 and "Choose what kind of file" in response.get_data(as_text=True)
    too_big = b"participant_id,first_name,phone,specialist_email\n" + b"x" * (6 * 1024 * 1024)
    response = _upload(client, "caseload", too_big)
    assert response.status_code == 413 and "too large" in response.get_data(as_text=True)
    page = client.get(_upload(client, "caseload", b"\xff\xfe\x00 binary").headers["Location"]).get_data(as_text=True)
    assert "not UTF-8" in page
    # The other forms keep their small limit.
    big_form = {"csrf_token": csrf(client, "/settings"), "caseload_cap": "1" * (100 * 1024)}
    assert client.post("/settings", data=big_form).status_code == 413


def test_cli_imports_are_recorded_for_their_service(as_user: Any, world: World, tmp_path: Path) -> None:
    from assistant.cli.commands import main

    env = {"ASSISTANT_DATABASE_URL": world.rt.settings.database_url}
    bad = tmp_path / "from-cli.csv"
    bad.write_text("participant_id,first_name,phone,specialist_email,service\nP030,Ivy,999,sam@example.org,north\n")
    result = CliRunner().invoke(main, ["import-caseload", str(bad)], env=env)
    assert result.exit_code == 1
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(
        "participant_id,first_name,phone,specialist_email,service\n"
        "P031,Jo,07700900131,sam@example.org,north\nP032,Kai,07700900132,kim@example.org,south\n"
    )
    assert CliRunner().invoke(main, ["import-caseload", str(mixed)], env=env).exit_code == 0
    with transaction(world.rt.engine) as db:
        runs = db.exec(select(ImportRun).order_by(col(ImportRun.id))).all()
        north = db.exec(select(Service).where(Service.slug == "north")).one()
    assert [(r.file_name, r.via, r.outcome, r.service_id) for r in runs] == [
        ("from-cli.csv", "cli", "rejected", north.id),
        ("mixed.csv", "cli", "imported", None),  # two services' rows: on neither's page
    ]
    client = as_user(ADMIN)
    listing = client.get("/imports").get_data(as_text=True)
    assert "from-cli.csv" in listing and "(command line)" in listing and "mixed.csv" not in listing
    assert "column phone" in client.get(f"/imports/{runs[0].id}").get_data(as_text=True).replace(
        "<td>phone</td>", "column phone"
    )


def test_error_report_csv_is_formula_safe(as_user: Any, world: World) -> None:
    client = as_user(ADMIN)
    body = (
        b"participant_id,first_name,phone,specialist_email,cohort\nP040,Lee,07700900140,sam@example.org,=HYPERLINK(1)\n"
    )
    location = _upload(client, "caseload", body).headers["Location"]
    export = client.get(location + "/errors.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    text = export.get_data(as_text=True)
    assert text.splitlines()[0] == "line,column,problem"
    assert "2,cohort," in text and ",=HYPERLINK" not in text and '"=HYPERLINK' not in text
