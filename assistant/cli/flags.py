"""Flags and logged contact from the command line: list, acknowledge, resolve, log a contact."""

from __future__ import annotations

from typing import Any

import click
from sqlmodel import select

from assistant.cli.commands import main
from assistant.cli.common import _change_row, _runtime, _when, participant_or_fail
from assistant.db.models import FlagStatus, Participant
from assistant.db.units import transaction


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
            query = query.where(Flag.status != FlagStatus.RESOLVED)
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
        participant = participant_or_fail(db, participant_id)
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
