"""The `assistant` command, as an admin runs it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli.commands import main


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "ASSISTANT_DATABASE_URL": db_url,
        "ASSISTANT_CONSOLE_LOG": str(tmp_path / "sms.jsonl"),
        "TWILIO_AUTH_TOKEN": "cli-token",
        "ASSISTANT_PUBLIC_URL": "https://assistant.example.org",
    }


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, input=stdin, catch_exceptions=False)
    return result.exit_code, result.output


def test_import_tick_twice_and_export(cli_env: dict[str, str], caseload_file: Path) -> None:
    code, out = run(cli_env, "import-caseload", str(caseload_file), "--now", "2026-11-22T12:00:00+00:00")
    assert code == 0 and "created 3" in out
    assert "service north: crisis handling needs a duty contact" in out  # a new service is told what it lacks
    code, out = run(cli_env, "import-caseload", str(caseload_file), "--now", "2026-11-22T12:00:00+00:00")
    assert code == 0 and "unchanged 3" in out

    code, out = run(cli_env, "tick", "--now", "2026-11-24T10:30:00+00:00")
    assert code == 0 and "started 1," in out and "sent 1," in out
    assert "[SMS to +447700900101]" in out and "How has your week been?" in out
    code, out = run(cli_env, "tick", "--now", "2026-11-24T10:30:00+00:00")
    assert code == 0 and "started 0," in out and "sent 0," in out and "[SMS to" not in out

    code, out = run(cli_env, "export-participant", "P001")
    assert code == 0
    record = json.loads(out)
    assert record["participant_id"] == "P001" and record["phone"] == "+447700900101"
    assert record["specialist"]["email"] == "sam.jones@example.org" and record["opted_out"] is False
    [message] = record["messages"]
    assert {"direction", "body", "at", "status", "flow"} <= message.keys()
    assert (message["direction"], message["status"], message["flow"]) == ("out", "sent", "checkin")
    assert record["answers"] == [] and record["flags"] == []


def test_rejected_import_exits_non_zero_and_lists_errors(cli_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("participant_id,first_name,phone,specialist_email\nP1,Al,12,x\n")
    code, out = run(cli_env, "import-caseload", str(bad))
    assert code == 1
    assert "nothing was imported" in out and "line 2, column phone" in out and "line 2, column specialist_email" in out


def test_simulate_uses_the_webhook_path(cli_env: dict[str, str], caseload_file: Path) -> None:
    run(cli_env, "import-caseload", str(caseload_file), "--now", "2026-11-22T12:00:00+00:00")
    code, out = run(
        cli_env,
        "simulate",
        "--participant",
        "P001",
        "--now",
        "2026-11-24T10:00:00+00:00",
        stdin="/wait 30m\n3\nyes\nhelp\n/quit\n",
    )
    assert code == 0, out
    assert "How has your week been?" in out
    assert "Would you like me to give you a call?" in out
    assert "Your request for a call is saved for" in out and "who will call you in working hours" in out
    assert "Texts are not read all the time" in out
    code, out = run(cli_env, "export-participant", "P001")
    record = json.loads(out)
    assert [a["value"] for a in record["answers"]] == ["not_great", "yes"]
    assert [f["kind"] for f in record["flags"]] == ["callback", "asked_for_help"]  # HELP alone tells a person too
    assert [m["direction"] for m in record["messages"]] == ["out", "in", "out", "in", "out", "in", "out"]


def test_unknown_participant_is_a_clear_error(cli_env: dict[str, str]) -> None:
    code, out = run(cli_env, "export-participant", "NOPE")
    assert code != 0 and "no participant 'NOPE'" in out


def test_bad_now_is_refused(cli_env: dict[str, str]) -> None:
    code, out = run(cli_env, "tick", "--now", "2026-11-24T10:30:00")
    assert code != 0 and "timezone" in out


def test_service_settings_on_a_new_database_says_what_is_missing(cli_env: dict[str, str], tmp_path: Path) -> None:
    """The first command run on a new database: a plain refusal, not a missing table."""
    fresh = cli_env | {"ASSISTANT_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"}
    code, out = run(fresh, "service-settings", "demo", "quiet_from=22:00")
    assert code != 0 and "no service 'demo'" in out


def test_service_settings_show_change_and_refuse(cli_env: dict[str, str], caseload_file: Path) -> None:
    run(cli_env, "import-caseload", str(caseload_file))
    code, out = run(cli_env, "service-settings", "north")
    assert code == 0 and json.loads(out)["reminder_days_before"] == [3, 1]
    code, out = run(cli_env, "service-settings", "north", "duty_contact_email=duty@example.org")
    assert code == 0
    code, out = run(cli_env, "service-settings", "north", "reminder_days_before=7,3", "send_on_weekends=false")
    assert code == 0
    settings = json.loads(out)
    assert settings["reminder_days_before"] == [7, 3] and settings["send_on_weekends"] is False
    code, out = run(cli_env, "service-settings", "north", "quiet_until=25:00")
    assert code != 0 and "quiet_until" in out
    code, out = run(cli_env, "service-settings", "north", "colour=blue")
    assert code != 0 and "unknown setting" in out
    code, out = run(cli_env, "service-settings", "north", "nation=cornwall")
    assert code != 0 and "nation must be one of england, wales, scotland, northern_ireland" in out
    code, out = run(cli_env, "service-settings", "north")
    assert json.loads(out)["reminder_days_before"] == [7, 3]  # the refused changes changed nothing
    assert json.loads(out)["nation"] == "england"
    code, out = run(cli_env, "service-settings", "north", "nation=Scotland")  # as people write it
    assert code == 0 and json.loads(out)["nation"] == "scotland"


def test_import_appointments_command(cli_env: dict[str, str], caseload_file: Path, tmp_path: Path) -> None:
    run(cli_env, "import-caseload", str(caseload_file), "--now", "2026-11-22T12:00:00+00:00")
    good = tmp_path / "appointments.csv"
    good.write_text("appointment_id,participant_id,starts_at,kind\nA1,P001,2026-11-27 14:00,meeting\n")
    code, out = run(cli_env, "import-appointments", str(good), "--now", "2026-11-22T12:00:00+00:00")
    assert code == 0 and "created 1" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("appointment_id,participant_id,starts_at,kind\nA2,P404,2026-11-27 14:00,meeting\n")
    code, out = run(cli_env, "import-appointments", str(bad), "--now", "2026-11-22T12:00:00+00:00")
    assert code == 1 and "no participant 'P404'" in out
    code, out = run(cli_env, "tick", "--now", "2026-11-24T10:00:00+00:00")
    assert "Just a reminder of your appointment on Fri 27 Nov at 14:00" in out


def test_flags_for_a_specialist_oldest_first_and_resolving(cli_env: dict[str, str], caseload_file: Path) -> None:
    run(cli_env, "import-caseload", str(caseload_file), "--now", "2026-11-22T12:00:00+00:00")
    from assistant.config import load_settings
    from assistant.conversation.inbound import receive_sms
    from assistant.runtime import build_runtime

    rt = build_runtime(load_settings(cli_env))
    receive_sms(rt, sid="SM1", sender="+447700900102", body="call me", now=datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    receive_sms(rt, sid="SM2", sender="+447700900101", body="hello", now=datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
    receive_sms(rt, sid="SM3", sender="+447700900103", body="call me", now=datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    code, out = run(cli_env, "flags", "--specialist", "sam.jones@example.org")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 2
    assert "P002" in lines[0] and "callback" in lines[0] and "P001" in lines[1]
    flag_id = lines[0].split()[0].lstrip("#")
    code, out = run(cli_env, "flag-resolve", flag_id, "--by", "sam.jones@example.org", "--note", " ")
    assert code != 0 and "note is required" in out
    code, out = run(cli_env, "flag-resolve", flag_id, "--by", "sam.jones@example.org", "--note", "Rang Jordan")
    assert code == 0
    code, out = run(cli_env, "flags", "--specialist", "sam.jones@example.org")
    assert len(out.strip().splitlines()) == 1
    code, out = run(cli_env, "flags", "--specialist", "nobody@example.org")
    assert code != 0


def test_campaign_commands(cli_env: dict[str, str], caseload_file: Path) -> None:
    run(cli_env, "import-caseload", str(caseload_file), "--now", "2026-11-22T12:00:00+00:00")
    base = [
        "campaign",
        "create",
        "--service",
        "north",
        "--name",
        "CV clinic",
        "--text",
        "Hi {{ first_name }}, CV clinic on Tuesday.",
        "--now",
        "2026-11-23T09:00:00+00:00",
    ]
    code, out = run(cli_env, *base, "--audience", "cohort=out_of_work", "--preview")
    assert code == 0 and "2 participant(s) would get it" in out and "Hi Alex, CV clinic on Tuesday." in out
    code, out = run(cli_env, *base, "--at", "2026-11-22T10:00:00+00:00")
    assert code != 0 and "in the past" in out
    code, out = run(cli_env, *base, "--at", "2026-11-24T10:00:00+00:00")
    assert code == 0 and "scheduled for 3 participant(s)" in out
    assert run(cli_env, "campaign", "pause", "1")[1].strip() == "campaign #1 paused"
    code, out = run(cli_env, "campaign", "cancel", "1")
    assert code == 0 and "3 not yet sent withdrawn" in out
    code, out = run(cli_env, "campaign", "resume", "1")
    assert code != 0 and "already cancelled" in out
    code, out = run(cli_env, "campaign", "pause", "99")
    assert code != 0 and "no campaign #99" in out
    code, out = run(cli_env, "campaign", "show", "1", "--participants")
    assert "withdrawn  3  P001, P002, P003" in out


def test_a_campaign_preview_refuses_what_creating_it_would(cli_env: dict[str, str], caseload_file: Path) -> None:
    run(cli_env, "import-caseload", str(caseload_file), "--now", "2026-11-22T12:00:00+00:00")
    base = ["campaign", "create", "--service", "north", "--name", "Nudge", "--now", "2026-11-23T09:00:00+00:00"]
    code, out = run(cli_env, *base, "--text", "Hi {{ firstname }}", "--preview")
    assert code != 0 and "unknown merge field(s) ['firstname']" in out and "Traceback" not in out
    code, out = run(
        cli_env, *base, "--text", "Hi {{ first_name }}, if you don't reply you could be sanctioned", "--preview"
    )
    assert code != 0 and "reads like pressure" in out and "would get it" not in out
    code, out = run(cli_env, *base, "--text", "Hi {{ first_name }}", "--at", "2020-01-01T10:00:00+00:00", "--preview")
    assert code != 0 and "in the past" in out
    code, out = run(cli_env, *base, "--text", "Hi {{ first_name }}", "--preview")
    assert code == 0 and "3 participant(s) would get it" in out


def test_campaign_from_a_ready_made_message(cli_env: dict[str, str], caseload_file: Path) -> None:
    run(cli_env, "import-caseload", str(caseload_file), "--now", "2026-11-22T12:00:00+00:00")
    base = ["campaign", "create", "--service", "north", "--name", "Event"]
    code, out = run(cli_env, *base, "--template", "employer_event", "--preview")
    assert code == 0 and "Hi Alex, a local employer is holding an open event next week." in out
    assert "Reply YES if you'd like a place" in out and "1 segment(s), GSM-7" in out
    code, out = run(cli_env, *base, "--template", "nope", "--preview")
    assert code != 0 and "no campaign template 'nope'" in out and "cv_clinic" in out
    code, out = run(cli_env, *base, "--template", "cv_clinic", "--text", "Hi", "--preview")
    assert code != 0 and "not both" in out


def test_a_team_lead_needs_a_team(cli_env: dict[str, str], caseload_file: Path, tmp_path: Path) -> None:
    run(cli_env, "import-caseload", str(caseload_file), "--now", "2026-11-22T12:00:00+00:00")
    base = ["create-user", "lead@example.org", "--role", "team_lead", "--service", "north"]
    code, out = run(cli_env, *base, "--password", "a long enough passphrase")
    assert code != 0 and "needs --team" in out
    code, out = run(cli_env, *base, "--team", "blue", "--password", "a long enough passphrase")
    assert code == 0 and "no specialist in north is on team 'blue' yet" in out and "(teams in north: none yet;" in out
    # Once a specialist is on the team, a lead of it is created without a note; a slip is named.
    teams = tmp_path / "teams.csv"
    teams.write_text(
        "participant_id,first_name,phone,specialist_email,specialist_name,service,team\n"
        "P009,Robin,447700900109,kim@example.org,Kim Shah,north,Red\n"
    )
    assert run(cli_env, "import-caseload", str(teams), "--now", "2026-11-22T12:00:00+00:00")[0] == 0
    lead = ["--role", "team_lead", "--service", "north", "--password", "a long enough passphrase"]
    code, out = run(cli_env, "create-user", "red@example.org", *lead, "--team", "Red")
    assert code == 0 and "note" not in out
    code, out = run(cli_env, "create-user", "red2@example.org", *lead, "--team", "red")
    assert code == 0 and "on team 'red' yet" in out and "(teams in north: Red;" in out


def test_a_one_off_command_compiles_the_phrases_only_when_it_reads_a_text(cli_env: dict[str, str]) -> None:
    from assistant.config import load_settings
    from assistant.runtime import build_runtime

    rt = build_runtime(load_settings(cli_env), phrases_now=False)
    assert rt.compiled_phrases is None
    assert rt.phrases.get("en-GB") is rt.phrases.get(None)  # compiled at the first use, then kept
    assert rt.compiled_phrases is not None
    assert run(cli_env, "campaign", "list")[1].strip() == "no campaigns yet"
