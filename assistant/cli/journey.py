"""`assistant journey-report SERVICE`: days from referral to first contact, first reply and start."""

from __future__ import annotations

import click
from sqlmodel import select

from assistant.config import load_settings
from assistant.db.models import Service
from assistant.db.units import transaction
from assistant.reporting.journey import JourneySummary, journey_rows
from assistant.runtime import build_runtime

MEASURES = (
    ("days_to_first_contact", "first contact"),
    ("days_to_first_reply", "first reply"),
    ("days_to_start", "start of support"),
)


def _show(value: object) -> str:
    return "-" if value is None else str(value)


def render(summary: JourneySummary) -> list[str]:
    lines = [
        "participant,referral_date,source,to_first_contact,to_first_reply,to_start,exit_reason,job_outcomes,sustained"
    ]
    for r in summary.rows:
        sustained = ";".join(f"{weeks}w:{answer}" for weeks, answer in sorted(r.sustained.items()))
        lines.append(
            ",".join(
                _show(v)
                for v in (
                    r.external_id,
                    r.referral_date,
                    r.referral_source,
                    r.days_to_first_contact,
                    r.days_to_first_reply,
                    r.days_to_start,
                    r.exit_reason,
                    r.job_outcomes,
                    sustained or None,
                )
            )
        )
    referred = sum(1 for r in summary.rows if r.referral_date is not None)
    lines.append(f"referred (with a referral date): {referred} of {len(summary.rows)}")
    for name, label in MEASURES:
        lines.append(
            f"days from referral to {label}: median {_show(summary.median_days(name))}, not yet {summary.missing(name)}"
        )
    lines.append(f"job outcomes (7+ hours a week): {summary.job_outcomes}")
    return lines


@click.command("journey-report")
@click.argument("service")
def journey_report_command(service: str) -> None:
    """Days from referral to first contact, first reply and start, per participant and as medians."""
    rt = build_runtime(load_settings())
    with transaction(rt.engine) as db:
        found = db.exec(select(Service).where(Service.slug == service)).first()
        if found is None or found.id is None:
            raise click.ClickException(f"no service {service!r}")
        summary = journey_rows(db, found.id)
    for line in render(summary):
        click.echo(line)
    rt.engine.dispose()
