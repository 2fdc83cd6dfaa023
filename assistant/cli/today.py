"""`assistant today --specialist EMAIL`: the specialist's day, as the Today page lists it."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import click
from sqlmodel import select

from assistant.config import load_settings
from assistant.db.models import Specialist
from assistant.db.units import transaction
from assistant.reporting import today
from assistant.runtime import build_runtime


@click.command("today")
@click.option("--specialist", "email", required=True, help="The specialist's email address.")
@click.option("--now", "at_text", help="As at this time (ISO, with zone); default now.")
def today_command(email: str, at_text: str | None) -> None:
    """What a specialist has to do today, most urgent first."""
    from assistant.cli.common import _when as parse_when

    rt = build_runtime(load_settings())
    now = parse_when(at_text) if at_text else rt.clock.now()
    tz = rt.settings.default_timezone
    with transaction(rt.engine) as db:
        specialist = db.exec(select(Specialist).where(Specialist.email == email.strip().lower())).first()
        if specialist is None or specialist.id is None:
            raise click.ClickException(f"no specialist with the email {email}")
        items = today.day_list(db, specialist.id, now, tz)
    local = now.astimezone(ZoneInfo(tz))
    who = f"{specialist.name} ({specialist.email})" if specialist.name else specialist.email
    click.echo(f"Today for {who}, {local:%a %d %b %Y}: {len(items)} thing{'' if len(items) == 1 else 's'} to do")
    for number, item in enumerate(items, start=1):
        since = f"  since {item.since.astimezone(ZoneInfo(tz)):%a %d %b %H:%M}" if item.since else ""
        click.echo(
            f"{number:>3}. {item.group.upper():<24} {item.first_name} ({item.external_id}): {item.what}{since}"
            f"  [{item.ref}]"
        )
