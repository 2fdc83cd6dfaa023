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

from assistant.cli.common import _cli_user, _runtime, _when
from assistant.cli.journey import journey_report_command
from assistant.clock import FixedClock
from assistant.config import ROOT, ConfigError, load_settings
from assistant.db.models import DueTask, Participant
from assistant.db.units import transaction, upgrade
from assistant.engine import FlowError, parse_duration
from assistant.imports.caseload import import_caseload
from assistant.jobs.tick import start_clock, tick
from assistant.reporting.export import NotFound, export_participant, find_participant
from assistant.runtime import Runtime, build_runtime
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

    rt = _runtime()
    _upgrade_when_reachable(rt.settings.database_url)
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
    from assistant.care.notify import send_notifications
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


@main.command("export-participant")
@click.argument("participant_id")
@click.option("--service", help="The service, when the id is used in more than one.")
def export_command(participant_id: str, service: str | None) -> None:
    """Print a participant's whole record as JSON (the subject access export)."""
    rt = _runtime()
    with transaction(rt.engine) as db:
        try:
            participant = find_participant(db, participant_id, service)
        except NotFound as exc:
            raise click.ClickException(str(exc)) from None
        record = export_participant(db, participant)
    click.echo(json.dumps(record, indent=2, ensure_ascii=False))


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
    from assistant.db.units import lock_participant
    from assistant.sending.sender import send_due
    from assistant.sessions.lifecycle import start_flow

    clock = FixedClock(_when(now_text))
    settings = replace(load_settings(), dispatch="inline")
    rt = build_runtime(settings, clock=clock, transport=ConsoleTransport(stream=sys.stdout))
    upgrade(rt.settings.database_url)
    with transaction(rt.engine) as db:
        try:
            participant = find_participant(db, participant_id)
        except NotFound as exc:
            raise click.ClickException(str(exc)) from None
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
            clock.set(clock.now() + step)
            report = tick(rt, clock.now(), participant_id=participant.id)
            click.echo(f"[it is now {clock.now():%a %d %b %Y %H:%M} UTC; {report.started} contact(s) started]")
            continue
        if text.strip() == "/checkin":
            with transaction(rt.engine) as db:
                locked = lock_participant(db, participant.id or 0)
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
        try:
            participant = find_participant(db, participant_id, service)
        except NotFound as exc:
            raise click.ClickException(str(exc)) from None
        waiting = db.exec(
            select(DueTask).where(
                DueTask.participant_id == participant.id,
                DueTask.kind == "questionnaire",
                DueTask.status == "pending",
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


@main.command("flags")
@click.option("--all", "show_all", is_flag=True, help="Include resolved flags.")
@click.option("--specialist", help="Only this specialist's open flags, oldest first.")
def flags_command(show_all: bool, specialist: str | None) -> None:
    """List open flags, urgent first (or one specialist's, oldest first)."""
    from assistant.db.models import Flag, Specialist

    rt = _runtime()
    order = {"urgent": 0, "action": 1, "info": 2}
    with transaction(rt.engine) as db:
        query = select(Flag)
        if not show_all:
            query = query.where(Flag.status != "resolved")
        if specialist:
            owner = db.exec(select(Specialist).where(Specialist.email == specialist.lower())).first()
            if owner is None:
                raise click.ClickException(f"no specialist {specialist!r}")
            query = query.where(Flag.specialist_id == owner.id)
        rows = db.exec(query).all()
        if specialist:
            rows = sorted(rows, key=lambda f: f.created_at or rt.clock.now())
        else:
            rows = sorted(rows, key=lambda f: (order.get(f.severity, 3), f.created_at or rt.clock.now()))
        people = {p.id: p.external_id for p in db.exec(select(Participant)).all()}
    for flag in rows:
        click.echo(
            f"#{flag.id} {flag.severity.upper():7} {flag.status:12} {people.get(flag.participant_id, '?'):10} "
            f"{flag.kind}: {flag.reason} ({len(flag.evidence)} item(s), since {flag.created_at:%d %b %H:%M})"
        )


@main.command("flag-ack")
@click.argument("flag_id", type=int)
@click.option("--by", "by", required=True, help="Who is acknowledging (email).")
@click.option("--note", default="", help="What you are doing about it.")
def flag_ack(flag_id: int, by: str, note: str) -> None:
    """Acknowledge a flag: escalation stops; the flag stays open until resolved."""
    from assistant.care.flags import acknowledge

    _change_flag(flag_id, lambda db, flag, now: acknowledge(db, flag, by=by, note=note or None, now=now))
    click.echo(f"flag #{flag_id} acknowledged")


def _change_row(model: Any, row_id: int, label: str, change: Any) -> Any:
    """Load one row by id and change it in one transaction; a refusal (ValueError) is a clear error."""
    rt = _runtime()
    with transaction(rt.engine) as db:
        row = db.get(model, row_id)
        if row is None:
            raise click.ClickException(f"no {label} #{row_id}")
        try:
            return change(db, row, rt.clock.now())
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None


def _change_flag(flag_id: int, change: Any) -> None:
    from assistant.db.models import Flag

    _change_row(Flag, flag_id, "flag", change)


@main.command("flag-resolve")
@click.argument("flag_id", type=int)
@click.option("--by", "by", required=True, help="Who is resolving (email).")
@click.option("--note", required=True, help="What was done.")
def flag_resolve(flag_id: int, by: str, note: str) -> None:
    """Resolve a flag with a note saying what was done."""
    from assistant.care.flags import resolve

    _change_flag(flag_id, lambda db, flag, now: resolve(db, flag, by=by, note=note, now=now))
    click.echo(f"flag #{flag_id} resolved")


@main.command("log-contact")
@click.argument("participant_id")
@click.option("--channel", type=click.Choice(["phone", "in_person", "video", "email", "other"]), required=True)
@click.option("--by", "by", required=True, help="Who made the contact (email).")
@click.option("--at", "at_text", help="When (ISO, with zone); default now.")
@click.option("--note", default="")
def log_contact(participant_id: str, channel: str, by: str, at_text: str | None, note: str) -> None:
    """Record a contact made outside the assistant, as weekly-contact evidence."""
    from assistant.db.models import ContactLog

    rt = _runtime()
    with transaction(rt.engine) as db:
        try:
            participant = find_participant(db, participant_id)
        except NotFound as exc:
            raise click.ClickException(str(exc)) from None
        assert participant.id is not None
        db.add(
            ContactLog(
                participant_id=participant.id,
                at=_when(at_text),
                channel=channel,
                note=note[:2000],
                logged_by=by,
                logged_at=rt.clock.now(),
            )
        )
    click.echo("logged")


@main.command("create-user")
@click.argument("email")
@click.option("--role", type=click.Choice(["specialist", "team_lead", "service_admin"]), required=True)
@click.option("--service", "service_slug", required=True, help="The service they work in.")
@click.option("--team", help="For a team lead: the team whose caseloads they see.")
@click.option(
    "--password",
    envvar="ASSISTANT_NEW_USER_PASSWORD",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Asked for if not given (or set ASSISTANT_NEW_USER_PASSWORD).",
)
def create_user(email: str, role: str, service_slug: str, team: str | None, password: str) -> None:
    """Create a dashboard user (the first service admin, or anyone after)."""
    from assistant.auth import PasswordRuleError, hash_password
    from assistant.db.models import Service, Specialist, User

    if role == "team_lead" and not (team or "").strip():
        raise click.ClickException("a team lead needs --team: the team whose caseloads they see")
    rt = _runtime()
    upgrade(rt.settings.database_url)
    email = email.strip().lower()
    if "@" not in email or any(c.isspace() for c in email):
        raise click.ClickException(f"not an email address: {email!r}")
    try:
        hashed = hash_password(password)
    except PasswordRuleError as exc:
        raise click.ClickException(str(exc)) from None
    with transaction(rt.engine) as db:
        service = db.exec(select(Service).where(Service.slug == service_slug)).first()
        if service is None:
            service = Service(slug=service_slug, name=service_slug)
            db.add(service)
            db.flush()
        if db.exec(select(User).where(User.email == email)).first():
            raise click.ClickException(f"{email} already has an account")
        specialist = db.exec(select(Specialist).where(Specialist.email == email)).first()
        if role == "specialist" and specialist is None:
            raise click.ClickException(f"{email} is not a specialist on any imported caseload")
        assert service.id is not None
        db.add(
            User(
                email=email,
                password_hash=hashed,
                role=role,
                service_id=service.id,
                specialist_id=specialist.id if specialist else None,
                team=team or (specialist.team if specialist else None),
                created_at=rt.clock.now(),
                password_changed_at=rt.clock.now(),
            )
        )
    click.echo(f"created {role} {email} in service {service_slug}")


def _user_or_fail(db: Any, email: str) -> Any:
    from assistant.db.models import User

    user = db.exec(select(User).where(User.email == email.strip().lower())).first()
    if user is None:
        raise click.ClickException(f"no account for {email}")
    return user


@main.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice(["specialist", "team_lead", "service_admin"]))
@click.option("--team", help="For a team lead: the team whose caseloads they see.")
def set_role(email: str, role: str, team: str | None) -> None:
    """Change a dashboard user's role; every session of theirs ends at once."""
    from assistant.care.audit import audit
    from assistant.care.signins import change_role

    if role == "team_lead" and not (team or "").strip():
        raise click.ClickException("a team lead needs --team: the team whose caseloads they see")
    rt = _runtime()
    with transaction(rt.engine) as db:
        user = _user_or_fail(db, email)
        if role == "specialist" and user.specialist_id is None:
            raise click.ClickException(f"{user.email} is not a specialist on any imported caseload")
        before = user.role
        if team:
            user.team = team.strip()
        change_role(db, user, role, rt.clock.now())
        audit(db, user, "role_change", rt.clock.now(), by=_cli_user(), before=before, after=role)
    click.echo(f"{user.email} is now {role}; their sessions have ended")


@main.command("deactivate-user")
@click.argument("email")
def deactivate_user(email: str) -> None:
    """Stop a dashboard user signing in; every session of theirs ends at once."""
    from assistant.care.audit import audit
    from assistant.care.signins import deactivate

    rt = _runtime()
    with transaction(rt.engine) as db:
        user = _user_or_fail(db, email)
        deactivate(db, user, rt.clock.now())
        audit(db, user, "deactivate", rt.clock.now(), by=_cli_user())
    click.echo(f"{user.email} can no longer sign in; their sessions have ended")


@main.group("campaign")
def campaign_group() -> None:
    """Scheduled reminders and announcements for a group of participants."""


def _audience(pairs: tuple[str, ...]) -> dict[str, str]:
    audience = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.ClickException(f"audience filters are KEY=VALUE, not {pair!r}")
        audience[key.strip()] = value.strip()
    return audience


def _relative(text: str | None) -> dict[str, object] | None:
    """'support_end:-28@10:00' -> 28 days before support ends, at 10:00 local."""
    if not text:
        return None
    field_name, _, rest = text.partition(":")
    days, _, at = rest.partition("@")
    try:
        return {"field": field_name, "days": int(days), "at": at or "10:00"}
    except ValueError:
        raise click.ClickException("--relative looks like support_end:-28@10:00") from None


@campaign_group.command("create")
@click.option("--service", "service_slug", required=True)
@click.option("--name", required=True)
@click.option(
    "--text", default="", help="The message, with {{ first_name }}, {{ specialist_name }}, {{ appointment_time }}."
)
@click.option("--template", help="Start from a text in messages/en-GB/campaign/ (e.g. cv_clinic) instead of --text.")
@click.option("--flow", help="Start this flow instead of sending a text (e.g. questionnaire_phq9_gad7).")
@click.option("--audience", "audience_pairs", multiple=True, help="Filter KEY=VALUE (repeatable).")
@click.option("--at", "at_text", help="Send at this time (ISO, with zone).")
@click.option("--relative", "relative_text", help="Relative to a date on each record, e.g. support_end:-28@10:00.")
@click.option("--reply-keyword", help="A one-word reply that records interest, e.g. YES.")
@click.option("--by", "by", default="cli", help="Who is creating it (email).")
@click.option("--preview", is_flag=True, help="Show the count and a sample; queue nothing.")
@click.option("--now", "now_text", help="Plan it as if it were this time (ISO, with zone).")
def campaign_create(
    service_slug: str,
    name: str,
    text: str,
    template: str | None,
    flow: str | None,
    audience_pairs: tuple[str, ...],
    at_text: str | None,
    relative_text: str | None,
    reply_keyword: str | None,
    by: str,
    preview: bool,
    now_text: str | None,
) -> None:
    """Create (or preview) a campaign. Everything is checked before anything is queued."""
    from assistant.contact import campaigns
    from assistant.db.models import Service

    rt = _runtime()
    if template:
        if text:
            raise click.ClickException("give --text or --template, not both")
        try:
            text = campaigns.template_text(rt.settings.messages_dir, template)
        except campaigns.CampaignError as exc:
            raise click.ClickException(f"refused: {exc}") from None
    audience = _audience(audience_pairs)
    now = _when(now_text)
    with transaction(rt.engine) as db:
        service = db.exec(select(Service).where(Service.slug == service_slug)).first()
        if service is None or service.id is None:
            raise click.ClickException(f"no service {service_slug!r}")
        try:
            if preview:
                shown = campaigns.preview(db, service.id, text, audience, now)
                click.echo(f"{shown.count} participant(s) would get it. Sample:")
                for item in shown.sample:
                    click.echo(
                        f"- {item['first_name']} ({item['participant']}), {item['segments']} segment(s), "
                        f"{'GSM-7' if item['gsm7'] else 'UCS-2'}: {item['body']}"
                    )
                return
            campaign = campaigns.create(
                db,
                service_id=service.id,
                name=name,
                text=text,
                audience=audience,
                created_by=by,
                now=now,
                send_at=_when(at_text) if at_text else None,
                relative=_relative(relative_text),
                reply_keyword=reply_keyword,
                flow=flow,
                flows=rt.flows,
            )
        except campaigns.CampaignError as exc:
            raise click.ClickException(f"refused: {exc}") from None
        count = len(campaigns.progress(db, campaign)["participants"]["planned"])
    click.echo(f"campaign #{campaign.id} scheduled for {count} participant(s)")


@campaign_group.command("list")
def campaign_list() -> None:
    from assistant.db.models import Campaign

    rt = _runtime()
    with transaction(rt.engine) as db:
        for c in db.exec(select(Campaign).order_by(Campaign.id)).all():  # type: ignore[arg-type]
            when = f"{c.send_at:%Y-%m-%d %H:%M} UTC" if c.send_at else f"relative {c.relative}"
            click.echo(f"#{c.id} {c.status:10} {c.name} ({when})")


@campaign_group.command("show")
@click.argument("campaign_id", type=int)
@click.option("--participants", is_flag=True, help="List who is behind each number.")
def campaign_show(campaign_id: int, participants: bool) -> None:
    """Progress: queued, sent, delivered, failed (with reasons), replied, opted out in response."""
    from assistant.contact import campaigns
    from assistant.db.models import Campaign

    rt = _runtime()
    with transaction(rt.engine) as db:
        campaign = db.get(Campaign, campaign_id)
        if campaign is None:
            raise click.ClickException(f"no campaign #{campaign_id}")
        report = campaigns.progress(db, campaign)
        people: dict[int | None, str] = {}
        if participants:
            ids = sorted({pid for state_ids in report["participants"].values() for pid in state_ids})
            for first in range(0, len(ids), 5000):
                chunk = ids[first : first + 5000]
                people |= dict(
                    db.exec(select(Participant.id, Participant.external_id).where(col(Participant.id).in_(chunk))).all()
                )
    click.echo(f"#{campaign.id} {campaign.name}: {campaign.status}, {report['total']} participant(s)")
    for state, count in report["counts"].items():
        line = f"  {state:10} {count}"
        if participants and report["participants"].get(state):
            line += "  " + ", ".join(people.get(i, "?") for i in report["participants"][state])
        click.echo(line)
    for reason, count in report["failures"].items():
        click.echo(f"  failed because {reason}: {count}")


def _campaign_status(campaign_id: int, status: str) -> None:
    from assistant.contact import campaigns
    from assistant.db.models import Campaign

    withdrawn = _change_row(
        Campaign, campaign_id, "campaign", lambda db, campaign, now: campaigns.set_status(db, campaign, status, now)
    )
    click.echo(f"campaign #{campaign_id} {status}" + (f"; {withdrawn} not yet sent withdrawn" if withdrawn else ""))


@campaign_group.command("pause")
@click.argument("campaign_id", type=int)
def campaign_pause(campaign_id: int) -> None:
    _campaign_status(campaign_id, "paused")


@campaign_group.command("resume")
@click.argument("campaign_id", type=int)
def campaign_resume(campaign_id: int) -> None:
    _campaign_status(campaign_id, "scheduled")


@campaign_group.command("cancel")
@click.argument("campaign_id", type=int)
def campaign_cancel(campaign_id: int) -> None:
    _campaign_status(campaign_id, "cancelled")


@main.command("consent")
@click.argument("participant_id")
@click.argument("purpose", type=click.Choice(["sms_contact", "evaluation", "share_with_referrer"]))
@click.option("--grant/--withdraw", required=True)
@click.option("--by", "by", required=True, help="Who is recording it (email).")
@click.option("--basis", default="consent", type=click.Choice(["consent", "public_task", "legitimate_interests"]))
@click.option("--note", default="")
def consent_command(participant_id: str, purpose: str, grant: bool, by: str, basis: str, note: str) -> None:
    """Record consent for a purpose, or its withdrawal (which takes effect at once)."""
    from assistant.care.privacy import record_consent

    rt = _runtime()
    with transaction(rt.engine) as db:
        try:
            participant = find_participant(db, participant_id)
        except NotFound as exc:
            raise click.ClickException(str(exc)) from None
        record_consent(
            db, participant, purpose, granted=grant, by=by, now=rt.clock.now(), lawful_basis=basis, note=note
        )
    click.echo(f"{purpose}: {'granted' if grant else 'withdrawn'} for {participant_id}, recorded by {by}")


@main.command("erase-participant")
@click.argument("participant_id")
@click.option("--service", help="The service, when the id is used in more than one.")
@click.option("--yes", "confirmed", is_flag=True, help="Do it (it cannot be undone).")
def erase_participant(participant_id: str, service: str | None, confirmed: bool) -> None:
    """Irreversibly anonymise a participant's personal data, keeping the counts reports need."""
    from assistant.care.privacy import erase

    rt = _runtime()
    if not confirmed:
        raise click.ClickException("this cannot be undone: add --yes to erase")
    with transaction(rt.engine) as db:
        try:
            participant = find_participant(db, participant_id, service)
        except NotFound as exc:
            raise click.ClickException(str(exc)) from None
        report = erase(db, participant, rt.clock.now())
    click.echo(f"{participant_id} erased.")
    click.echo("\n".join(report.lines()))


@main.command("retention")
@click.option("--dry-run", is_flag=True, help="Only list who would be anonymised.")
@click.option("--now", "now_text", help="As if it were this time (ISO, with zone).")
def retention_command(dry_run: bool, now_text: str | None) -> None:
    """Apply each service's retention period (months after support ends)."""
    from assistant.care.privacy import due_for_retention, erase

    rt = _runtime()
    now = _when(now_text)
    with transaction(rt.engine) as db:
        due = due_for_retention(db, now.date())
        for participant in due:
            line = f"{participant.external_id}: support ended {participant.support_ends_on}"
            if dry_run:
                click.echo("would anonymise " + line)
            else:
                erase(db, participant, now)
                click.echo("anonymised " + line)
    click.echo(f"{len(due)} record(s) {'due' if dry_run else 'anonymised'}")


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
    app.run(host=host, port=port, threaded=True, use_reloader=False)


main.add_command(journey_report_command)
from assistant.cli.reports import COMMANDS as REPORT_COMMANDS  # noqa: E402

for _command in REPORT_COMMANDS:
    main.add_command(_command)
from assistant.cli.today import today_command  # noqa: E402

main.add_command(today_command)

if __name__ == "__main__":
    main()
