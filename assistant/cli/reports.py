"""Reports for the service and its commissioners, and each specialist's working time (FTE)."""

from __future__ import annotations

from datetime import date, time
from typing import Any

import click
from sqlmodel import select

from assistant.care.audit import audit_as
from assistant.cli.common import _cli_user, _runtime
from assistant.db.models import Participant, Service, Specialist
from assistant.db.units import transaction
from assistant.timing import local_at


def _people(service: str | None) -> Any:
    query = select(Participant)
    if service:
        query = query.join(Service, Service.id == Participant.service_id).where(Service.slug == service)  # type: ignore[arg-type]
    return query


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not a date like 2026-11-23: {value!r}") from None


@click.group("report")
def report_group() -> None:
    """Reports for the service and its commissioners."""


@report_group.command("contact")
@click.option("--week", required=True, help="A date in the week (2026-11-23), or an ISO week (2026-W48).")
@click.option("--service", help="Only this service (its slug).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV for commissioners: participant ids only, no names.")
def report_contact(week: str, service: str | None, as_csv: bool) -> None:
    """Weekly contact evidence per specialist and cohort, with service totals and the people not reached."""
    from assistant.reporting.contact_evidence import weekly_contact
    from assistant.reporting.formats import contact_csv, contact_text

    rt = _runtime()
    with transaction(rt.engine) as db:
        try:
            report = weekly_contact(db, week, rt.settings.default_timezone, _people(service))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(contact_csv(report) if as_csv else contact_text(report), nl=not as_csv)


@report_group.command("caseload")
@click.option("--service", required=True, help="The service (its slug).")
@click.option("--on", "on", help="Count as on this day (default today), e.g. 2026-11-30.")
def report_caseload(service: str, on: str | None) -> None:
    """Active participants per specialist against the service's cap, scaled by each one's FTE."""
    from assistant.db.service_settings import for_service
    from assistant.reporting.caseload_caps import caseload_against_cap
    from assistant.reporting.formats import caps_text

    rt = _runtime()
    with transaction(rt.engine) as db:
        found = db.exec(select(Service).where(Service.slug == service)).first()
        if found is None:
            raise click.ClickException(f"no service {service!r}")
        cap = for_service(db, found.id).caseload_cap
        query = select(Specialist).where(Specialist.service_id == found.id).order_by(Specialist.name)  # type: ignore[arg-type]
        specialists = list(db.exec(query).all())
        tz = rt.settings.default_timezone
        moment = local_at(_day(on), time(23, 59), tz) if on else rt.clock.now()
        rows = caseload_against_cap(db, specialists, cap, moment, tz)
        click.echo(caps_text(rows, cap))


@report_group.command("outcomes")
@click.option("--from", "start", required=True, help="First day, e.g. 2026-10-01.")
@click.option("--to", "end", required=True, help="Last day, e.g. 2026-12-31.")
@click.option("--service", help="Only this service (its slug).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV for commissioners: counts under 5 suppressed.")
def report_outcomes(start: str, end: str, service: str | None, as_csv: bool) -> None:
    """Referrals, starts, waits, job starts, sustainment, exits and paired clinical outcomes."""
    from assistant.reporting.formats import outcomes_csv, outcomes_text
    from assistant.reporting.outcomes import outcomes_report

    rt = _runtime()
    with transaction(rt.engine) as db:
        try:
            report = outcomes_report(db, _day(start), _day(end), rt.settings.default_timezone, _people(service))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(outcomes_csv(report) if as_csv else outcomes_text(report), nl=not as_csv)


@click.command("set-fte")
@click.argument("email")
@click.argument("fte", type=float)
def set_fte_command(email: str, fte: float) -> None:
    """Set a specialist's full-time equivalent (0.1 to 1.0): their caseload cap is the service's times this."""
    from assistant.reporting.caseload_caps import set_fte

    rt = _runtime()
    with transaction(rt.engine) as db:
        specialist = db.exec(select(Specialist).where(Specialist.email == email.strip().lower())).first()
        if specialist is None:
            raise click.ClickException(f"no specialist {email!r}")
        before = specialist.fte
        try:
            set_fte(db, specialist, fte)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        detail = {"by": _cli_user(), "specialist": specialist.email, "before": before, "after": specialist.fte}
        audit_as(db, _cli_user(), specialist.service_id, "set_fte", rt.clock.now(), detail=detail)
    click.echo(f"{specialist.email}: FTE {specialist.fte}")


COMMANDS = (report_group, set_fte_command)
