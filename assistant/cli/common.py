"""What the command groups share: the runtime from settings, times given on the command line,
and who ran a command (for the audit log)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
from sqlmodel import Session

from assistant.clock import SystemClock
from assistant.config import load_settings
from assistant.db.models import Participant
from assistant.db.units import transaction
from assistant.reporting.export import NotFound, find_participant
from assistant.runtime import Runtime, build_runtime


def _when(value: str | None) -> datetime:
    if not value:
        return SystemClock().now()
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO date-time: {value!r}") from None
    if at.tzinfo is None:
        raise click.BadParameter("give a timezone, e.g. 2026-11-23T10:00:00+00:00")
    return at.astimezone(UTC)


def _runtime() -> Runtime:
    # A one-off command: the phrase files are compiled only if it reads a text.
    return build_runtime(load_settings(), phrases_now=False)


def _cli_user() -> str:
    """Who ran a command, for the audit log and import records."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"[:254]
    except (KeyError, OSError):
        return "cli"


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


def participant_or_fail(db: Session, participant_id: str, service: str | None = None) -> Participant:
    """The participant a command names (by their id in the caseload), or one clear error line."""
    try:
        return find_participant(db, participant_id, service)
    except NotFound as exc:
        raise click.ClickException(str(exc)) from None
