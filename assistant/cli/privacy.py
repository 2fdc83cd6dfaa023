"""A participant's data from the command line: export, consent, erasure and retention."""

from __future__ import annotations

import json

import click

from assistant.cli.commands import main
from assistant.cli.common import _runtime, _when, participant_or_fail
from assistant.db.units import transaction
from assistant.reporting.export import export_participant


@main.command("export-participant")
@click.argument("participant_id")
@click.option("--service", help="The service, when the id is used in more than one.")
def export_command(participant_id: str, service: str | None) -> None:
    """Print a participant's whole record as JSON (the subject access export)."""
    rt = _runtime()
    with transaction(rt.engine) as db:
        participant = participant_or_fail(db, participant_id, service)
        record = export_participant(db, participant)
    click.echo(json.dumps(record, indent=2, ensure_ascii=False))


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
        participant = participant_or_fail(db, participant_id)
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
        participant = participant_or_fail(db, participant_id, service)
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
