"""The caseload import's referral columns: referral_date (a date, not in the future) and
referral_source (one of the service's pre-coded sources, or "other"). A file without the
columns leaves what is on the record; an empty cell records the value as missing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlmodel import Session

from assistant.db.journey_settings import referral_choices
from assistant.db.models import Service
from assistant.db.service_settings import for_service


def referral_columns(row: dict[str, str], err: Callable[[str, str], None]) -> dict[str, Any]:
    """The referral values of one row, keyed only for the columns the file has."""
    found: dict[str, Any] = {}
    if "referral_date" in row:
        found["referral_date"] = None
        if row["referral_date"]:
            try:
                found["referral_date"] = date.fromisoformat(row["referral_date"])
            except ValueError:
                err("referral_date", f"not a date like 2026-11-30: {row['referral_date'][:20]!r}")
    if "referral_source" in row:
        source = row["referral_source"].strip().lower().replace(" ", "_")
        if len(source) > 64:
            err("referral_source", "must be at most 64 characters")
        found["referral_source"] = source[:64] or None
    return found


def referral_source_allowed(db: Session, service: Service, row: dict[str, Any], errors: list[str]) -> bool:
    """Whether the row's referral source is one the service lists (else an error names the choices)."""
    source = row.get("referral_source")
    if source is None:
        return True
    choices = referral_choices(for_service(db, service.id))
    if source in choices:
        return True
    errors.append(f"line {row['line']}, column referral_source: must be one of {', '.join(choices)}")
    return False
