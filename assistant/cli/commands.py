"""The `assistant` command: every operational task."""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from sqlmodel import col, func, select

from assistant.cli.common import _cli_user, _runtime, _when, participant_or_fail
from assistant.cli.journey import journey_report_command
from assistant.clock import FixedClock
from assistant.config import ROOT, ConfigError, load_settings
from assistant.db.models import DueTask, Participant, TaskStatus
from assistant.db.units import participant_unit, transaction, upgrade
from assistant.engine import FlowError, parse_duration
from assistant.imports.caseload import import_caseload
from assistant.jobs.tick import start_clock, tick
from assistant.runtime import Runtime, build_runtime, settle_process
from assistant.signing import twilio_signature
from assistant.transports import ConsoleTransport

DEMO_CASELOAD = ROOT / "demo" / "caseload.csv"
# The demo service's duty contact: crisis handling always needs one. With the embedded
# defaults, its emails and texts are printed to the console like everything else.
DEMO_DUTY_CONTACT = {"duty_contact_email": "duty@example.org", "duty_contact_phone": "+447700900999"}
# The demo asks questionnaires by private link (`assistant send-questionnaire P001 phq9 gad7`
# prints the text with the link; open it in a browser).
DEMO_SETTINGS = DEMO_DUTY_CONTACT | {"questionnaire_by": "link"}


class FriendlyGroup(click.Group):
    """Settings mistakes end in one clear line, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        except FlowError as exc:
            raise click.ClickException(f"content error: {exc}") from None


@click.group(cls=FriendlyGroup)
def main() -> None:
    """The participant contact assistant."""
    from assistant.logs import configure

    configure()  # JSON lines, phone numbers redacted, never message bodies


@main.command("db-upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema."""
    settings = load_settings()
    upgrade(settings.database_url)
    click.echo("database is up to date")


def _import(kind: str, path: Path, now_text: str | None) -> Any:
    """Run an all-or-nothing CSV import, listing every error if the file is refused; either way it is recorded."""
    from assistant.imports.runs import run_import

    rt = _runtime()
    upgrade(rt.settings.database_url)
    outcome = run_import(rt, kind, path, file_name=path.name, by=_cli_user(), via="cli", now=_when(now_text))
    if outcome.report is None:
        click.echo(f"{path}: rejected, nothing was imported:", err=True)
        for error in outcome.errors:
            click.echo(f"  {error}", err=True)
        sys.exit(1)
    if kind == "caseload":
        _warn_without_duty_contact(rt, outcome.report.services)
    return outcome.report


def _warn_without_duty_contact(rt: Runtime, slugs: frozenset[str]) -> None:
    """A service an import made (or one never set up) has nobody to tell of a crisis but the specialist."""
    from assistant.db.models import Service
    from assistant.db.service_settings import ServiceSettings, duty_contact_problem

    with transaction(rt.engine) as db:
        for service in db.exec(select(Service).where(col(Service.slug).in_(slugs)).order_by(col(Service.slug))).all():
            problem = duty_contact_problem(ServiceSettings.from_json(service.settings))
            if problem:
                click.echo(
                    f"service {service.slug}: {problem}, e.g. assistant service-settings {service.slug} "
                    "duty_contact_email=duty@example.org",
                    err=True,
                )


@main.command("import-caseload")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--now", "now_text", help="Plan check-ins as if it were this time (ISO, with zone).")
def import_caseload_command(path: Path, now_text: str | None) -> None:
    """Import or update participants from a CSV file (all rows or none)."""
    report = _import("caseload", path, now_text)
    if report.ignored_columns:
        click.echo(f"ignored unknown column(s): {', '.join(report.ignored_columns)}")
    click.echo(
        f"created {report.created}, updated {report.updated}, unchanged {report.unchanged}; "
        f"new specialists {report.specialists_created}"
    )


@main.command("import-appointments")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--now", "now_text", help="Import as if it were this time (ISO, with zone).")
def import_appointments_command(path: Path, now_text: str | None) -> None:
    """Import or update appointments from a CSV file (all rows or none)."""
    report = _import("appointments", path, now_text)
    click.echo(f"created {report.created}, updated {report.updated}, unchanged {report.unchanged}")


@main.command("service-settings")
@click.argument("service")
@click.argument("changes", nargs=-1)
@click.option("--now", "now_text", help="Re-plan reminders as if it were this time (ISO, with zone).")
def service_settings_command(service: str, changes: tuple[str, ...], now_text: str | None) -> None:
    """Show a service's settings, or change them: KEY=VALUE (lists comma-separated)."""
    from assistant.contact.settings_change import KINDS, SettingsError, change_settings, parse_value
    from assistant.db.models import Service
    from assistant.db.service_settings import ServiceSettings

    rt = _runtime()
    values: dict[str, Any] = {}
    for change in changes:
        key, sep, value = change.partition("=")
        if not sep or key not in KINDS:
            raise click.ClickException(f"unknown setting {key!r}: one of {', '.join(KINDS)}")
        try:
            values[key] = parse_value(key, value)
        except ValueError as exc:
            raise click.ClickException(f"{key}: {exc}") from None
    upgrade(rt.settings.database_url)  # the first command on a new database, like create-user
    with transaction(rt.engine) as db:
        row = db.exec(select(Service).where(Service.slug == service)).first()
        if row is None:
            raise click.ClickException(f"no service {service!r}")
        try:
            change_settings(db, row, values, by=_cli_user(), now=_when(now_text))
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(ServiceSettings.from_json(row.settings).to_json(), indent=2))


@main.command("tick")
@click.option("--now", "now_text", help="Run what is due at this instant (ISO, with zone).")
def tick_command(now_text: str | None) -> None:
    """Run everything due now (check-ins, timeouts, the outbox) once, then exit."""
    now = _when(now_text)
    rt = build_runtime(load_settings(), clock=FixedClock(now))
    report = tick(rt, now)
    click.echo(
        f"started {report.started}, deferred {report.deferred}, skipped {report.skipped}, timeouts {report.timeouts}, "
        f"urgent reminders {report.escalated}, "
        f"sent {report.sends.sent}, retried {report.sends.retried}, failed {report.sends.failed}"
    )


def _upgrade_when_reachable(url: str) -> None:
    """A scheduler started while the database is down (a restart of both, say) waits for it rather
    than exiting: the rows are still due, and nothing else would start the clock again."""
    import time

    from sqlalchemy.exc import OperationalError

    wait = 1.0
    while True:
        try:
            upgrade(url)
            return
        except OperationalError as error:
            reason = str(error).splitlines()[0]
            click.echo(f"database not reachable, trying again in {wait:g}s: {reason}", err=True)
            time.sleep(wait)
            wait = min(wait * 2, 30.0)


@main.command("scheduler")
def scheduler_command() -> None:
    """Run the clock continuously (one per deployment)."""
    import time

    rt = build_runtime(load_settings())  # the phrases compiled before the clock starts
    _upgrade_when_reachable(rt.settings.database_url)
    settle_process()
    start_clock(rt)
    click.echo(f"scheduler running every {rt.settings.tick_seconds:g}s; Ctrl-C to stop")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


@main.command("audit-dependencies")
@click.option(
    "--requirement",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=ROOT / "requirements-run.lock",
    show_default=True,
)
@click.option("--pip-audit", "pip_audit", help="The pip-audit program (default: the one beside this Python, or PATH).")
@click.option("--email-admins", is_flag=True, help="Email every service admin when something is found.")
@click.option("--now", "now_text", help="Date the emails as if it were this time (ISO, with zone).")
def audit_dependencies_command(
    requirement: Path, pip_audit: str | None, email_admins: bool, now_text: str | None
) -> None:
    """Check the locked packages against a vulnerability source; exit 1 if one is vulnerable, 2 if any
    package could not be checked."""
    from assistant.care.mail import send_notifications
    from assistant.cli.dependency_audit import audit, locked_packages, queue_admin_emails, report, verdict

    found = verdict(audit(requirement, program=pip_audit), total=locked_packages(requirement), require_audit=True)
    report(found, ci=False)
    if email_admins:
        now = _when(now_text)
        rt = build_runtime(load_settings(), clock=FixedClock(now))
        recipients = queue_admin_emails(rt, found, now)
        if recipients:
            send_notifications(rt, now)
            click.echo(f"emailed {len(recipients)} service admin(s)", err=True)
    sys.exit(found.exit_code)


_SIMULATED_TICK = timedelta(minutes=10)


@main.command("simulate")
@click.option("--participant", "participant_id", required=True)
@click.option("--now", "now_text", help="Start the simulated clock here (ISO, with zone).")
def simulate(participant_id: str, now_text: str | None) -> None:
    """Text with the assistant as the participant would, through the webhook's own code.

    Type a reply and press Enter. `/wait 2d` moves this participant's time on
    (m, h, d, w) and runs what fell due for them; `/checkin` starts a check-in now;
    `/quit` leaves. It writes to the configured database: use a copy for practice.
    """
    from assistant.app import create_app
    from assistant.sending.sender import send_due
    from assistant.sessions.lifecycle import start_flow

    clock = FixedClock(_when(now_text))
    settings = replace(load_settings(), dispatch="inline")
    rt = build_runtime(settings, clock=clock, transport=ConsoleTransport(stream=sys.stdout))
    upgrade(rt.settings.database_url)
    with transaction(rt.engine) as db:
        participant = participant_or_fail(db, participant_id)
    app = create_app(runtime=rt)
    client = app.test_client()
    url = rt.settings.public_url.rstrip("/") + "/twilio/sms"
    click.echo(f"You are {participant.first_name} ({participant.phone}). It is {clock.now():%a %d %b %Y %H:%M} UTC.")
    click.echo("Type a reply, /wait 2d, /checkin or /quit.")
    for line in sys.stdin:
        text = line.rstrip("\n")
        if text.strip() == "/quit":
            break
        if text.startswith("/wait"):
            try:
                step = parse_duration(text.split(maxsplit=1)[1])
            except (IndexError, ValueError):
                click.echo("say how long: /wait 30m, /wait 2h, /wait 1d")
                continue
            # Through the time in the clock's own steps, so each contact goes when it falls due (within
            # its sending hours), not all at the end, when some would be too late to send.
            until, started = clock.now() + step, 0
            while clock.now() < until:
                clock.set(min(until, clock.now() + _SIMULATED_TICK))
                started += tick(rt, clock.now(), participant_id=participant.id).started
            click.echo(f"[it is now {clock.now():%a %d %b %Y %H:%M} UTC; {started} contact(s) started]")
            continue
        if text.strip() == "/checkin":
            with participant_unit(rt.engine, participant.id or 0) as (db, locked):
                flow = rt.flows.get("checkin")
                assert locked is not None and flow is not None
                outcome = start_flow(db, rt, locked, flow, clock.now())
            send_due(rt, clock.now(), only=outcome.outbox)
            continue
        params = {
            "MessageSid": "SM" + uuid.uuid4().hex,
            "AccountSid": rt.settings.twilio_account_sid,
            "From": participant.phone,
            "To": rt.settings.twilio_from_number or "+447700900000",
            "Body": text,
        }
        signature = twilio_signature(url, params, rt.settings.twilio_auth_token)
        response = client.post("/twilio/sms", data=params, headers={"X-Twilio-Signature": signature})
        if response.status_code != 200:
            click.echo(f"[webhook answered {response.status_code}]")
        clock.set(clock.now() + timedelta(minutes=1))


@main.command("send-questionnaire")
@click.argument("participant_id")
@click.argument("instruments", nargs=-1, required=True)
@click.option("--service", help="The service, when the id is used in more than one.")
def send_questionnaire(participant_id: str, instruments: tuple[str, ...], service: str | None) -> None:
    """Ask a participant a questionnaire now (e.g. phq9 gad7), quiet hours permitting."""
    rt = _runtime()
    if unknown := [i for i in instruments if i not in rt.flows.instruments]:
        raise click.ClickException(f"unknown questionnaire(s) {unknown}: one of {sorted(rt.flows.instruments)}")
    now = rt.clock.now()
    with transaction(rt.engine) as db:
        participant = participant_or_fail(db, participant_id, service)
        waiting = db.exec(
            select(DueTask).where(
                DueTask.participant_id == participant.id,
                DueTask.kind == "questionnaire",
                DueTask.status == TaskStatus.PENDING,
                DueTask.due_at <= now,  # type: ignore[operator]
            )
        ).first()
        if waiting is not None:
            raise click.ClickException("a questionnaire is already about to be asked")
        assert participant.id is not None
        db.add(
            DueTask(
                participant_id=participant.id,
                kind="questionnaire",
                due_at=now,
                created_at=now,
                payload={"instruments": list(instruments), "reason": "now"},
            )
        )
    report = tick(rt, now, participant_id=participant.id)
    click.echo("asked" if report.started else "queued: it goes when texts may arrive and no other question is open")


def _demo_duty_contact(rt: Runtime, slugs: frozenset[str]) -> None:
    """Give the demo's services a duty contact, through the same path as any settings change."""
    from assistant.contact.settings_change import change_settings
    from assistant.db.models import Service
    from assistant.db.service_settings import ServiceSettings, duty_contact_problem

    with transaction(rt.engine) as db:
        for service in db.exec(select(Service).where(col(Service.slug).in_(slugs))).all():
            if duty_contact_problem(ServiceSettings.from_json(service.settings)):
                change_settings(db, service, dict(DEMO_SETTINGS), by="demo setup", now=rt.clock.now())


@main.command("run")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
def run_command(host: str, port: int) -> None:
    """Start the assistant with embedded defaults: SQLite, console SMS, demo caseload, in-process clock."""
    from assistant.app import create_app

    settings = replace(load_settings(), scheduler_in_process=True)
    if settings.public_url == "http://localhost:5000" and port != 5000:
        settings = replace(settings, public_url=f"http://localhost:{port}")
    settings.validate()
    upgrade(settings.database_url)
    rt = build_runtime(settings)
    with transaction(rt.engine) as db:
        count = db.exec(select(func.count()).select_from(Participant)).one()
    if count == 0 and DEMO_CASELOAD.exists():
        report = import_caseload(rt, DEMO_CASELOAD, rt.clock.now())
        _demo_duty_contact(rt, report.services)
        click.echo(f"loaded the demo caseload: {report.created} participants")
    from assistant.cli.banner import banner
    from assistant.logs import configure as configure_logging

    app = create_app(runtime=rt)
    configure_logging(settings.log_level, readable=not settings.production)  # JSON lines in production
    click.echo(banner(rt, host, port))
    settle_process()
    app.run(host=host, port=port, threaded=True, use_reloader=False)


main.add_command(journey_report_command)
from assistant.cli.reports import COMMANDS as REPORT_COMMANDS  # noqa: E402

for _command in REPORT_COMMANDS:
    main.add_command(_command)
from assistant.cli.today import today_command  # noqa: E402

main.add_command(today_command)

if __name__ == "__main__":
    main()
