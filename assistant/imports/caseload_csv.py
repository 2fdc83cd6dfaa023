"""Reading a caseload CSV and checking each row: the columns, their rules, every error by line and column."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from assistant.contact.referrals import journey_date_problems
from assistant.content.library import FALLBACK_LOCALE
from assistant.imports.referrals import referral_columns
from assistant.phones import PhoneError, to_e164
from assistant.timing import DAYS, parse_hhmm

REQUIRED = ("participant_id", "first_name", "phone", "specialist_email")
OPTIONAL = (
    "specialist_name",
    "service",
    "cohort",
    "checkin_day",
    "checkin_time",
    "timezone",
    "language",
    "support_start",
    "support_end",
    "team",
    "tags",
    "consent_sms",
    "referral_date",
    "referral_source",
)
COHORTS = {"out_of_work": 1, "in_work": 4}  # check-in every N weeks
# Defaults per cohort: a weekday morning out of work; a lunch break for people in work.
DEFAULT_SLOT = {"out_of_work": (1, "10:30"), "in_work": (2, "12:30")}
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
DEFAULT_SERVICE = "default"
# A scoped import (the dashboard's) refuses a phone or specialist email with one message whatever
# the reason, so a refusal never tells whether the number or address belongs to another service.
PHONE_REFUSED = (
    "this number cannot be used: check it is a whole UK phone number; if it is, whoever runs the assistant can say why"
)
EMAIL_REFUSED = "this email address cannot be used: check it is whole; if it is, whoever runs the assistant can say why"
EMAIL = re.compile(r"[a-z0-9][a-z0-9._%+'-]{0,63}@[a-z0-9-]+(\.[a-z0-9-]+)+")


class CsvImportError(ValueError):
    def __init__(self, errors: list[str], *, rows: int = 0, services: frozenset[str] = frozenset()) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors
        self.rows = rows  # the file's rows that held data, as far as it could be read
        self.services = services  # the services the file's rows name (slugs)


def read_csv(source: Path | bytes) -> tuple[list[str], list[dict[str, str]], list[str]]:
    """Headers (lower-cased), rows, and problems reading the file (a path, or an upload's bytes)."""
    raw = source if isinstance(source, bytes) else source.read_bytes()
    if len(raw) > MAX_BYTES:
        return [], [], [f"file is larger than {MAX_BYTES // (1024 * 1024)} MB"]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return [], [], [f"line {line}: file is not UTF-8 text (byte {exc.start}); save it as 'CSV UTF-8' and try again"]
    if "\x00" in text:
        return [], [], ["file contains NUL bytes: not a CSV"]
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        rows = list(reader)
    except csv.Error as exc:
        return [], [], [f"line {reader.line_num}: not valid CSV ({exc})"]
    if not rows:
        return [], [], ["file is empty"]
    headers = [h.strip().lower() for h in rows[0]]
    if len(headers) == 1 and ";" in headers[0]:
        return [], [], ["line 1: the columns are separated by ';': save the file as CSV, with commas"]
    if len(rows) - 1 > MAX_ROWS:
        return headers, [], [f"more than {MAX_ROWS} rows"]
    records: list[dict[str, str]] = []
    for row in rows[1:]:
        if not any(cell.strip() for cell in row):
            records.append({})
            continue
        records.append({h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(headers)})
    return headers, records, []


Err = Callable[[str, str], None]


def validate_row(
    line: int,
    row: dict[str, str],
    seen: dict[str, dict[str, int]],
    scope: str | None = None,
    locales: frozenset[str] = frozenset({FALLBACK_LOCALE}),
    now: datetime | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """One row's values cleaned, and its errors by line and column; `seen` finds duplicates across rows."""
    errors: list[str] = []
    clean: dict[str, Any] = {}

    def err(column: str, reason: str) -> None:
        errors.append(f"line {line}, column {column}: {reason}")

    _check_people(row, clean, err, scope)
    _check_service_and_slot(row, clean, err, scope)
    _check_dates_and_language(row, clean, err, locales, now)
    for column, value in (
        ("participant_id", clean["service"] + "/" + clean["participant_id"]),
        ("phone", clean.get("phone", "")),
    ):
        if value and not value.endswith("/"):
            first = seen.setdefault(column, {}).get(value)
            if first is not None:
                err(column, f"duplicate of line {first}")
            else:
                seen[column][value] = line
    return clean, errors


def _check_people(row: dict[str, str], clean: dict[str, Any], err: Err, scope: str | None) -> None:
    """The required columns; the participant's id, name, phone, consent and tags; their specialist and team."""
    for column in REQUIRED:
        if not row.get(column):
            err(column, "is required")
    pid = row.get("participant_id", "")
    if pid and (len(pid) > 64 or not pid.isprintable()):
        err("participant_id", "must be printable and at most 64 characters")
    clean["participant_id"] = pid
    name = row.get("first_name", "")
    if name and (len(name) > 100 or not name.isprintable()):
        err("first_name", "must be printable and at most 100 characters")
    clean["first_name"] = name
    if row.get("phone"):
        try:
            clean["phone"] = to_e164(row["phone"])
        except PhoneError as exc:
            err("phone", PHONE_REFUSED if scope is not None else str(exc))
    email = row.get("specialist_email", "").lower()
    if email and not EMAIL.fullmatch(email):
        err("specialist_email", EMAIL_REFUSED if scope is not None else f"not an email address: {email!r}")
    clean["specialist_email"] = email
    # Names reach email bodies, text signatures and headers: no line breaks or other control characters.
    specialist_name = row.get("specialist_name", "")
    if not specialist_name.isprintable() or len(specialist_name) > 200:
        err("specialist_name", "must be printable and at most 200 characters")
    clean["specialist_name"] = specialist_name
    team = row.get("team", "")
    if not team.isprintable() or len(team) > 64:
        err("team", "must be printable and at most 64 characters")
    clean["team"] = team or None
    consent = (row.get("consent_sms") or "yes").strip().lower()
    if consent not in ("yes", "no", "y", "n", "true", "false"):
        err("consent_sms", "must be yes or no")
    clean["consent_sms"] = consent in ("yes", "y", "true")
    clean["tags"] = sorted({t.strip().lower() for t in row.get("tags", "").split(";") if t.strip()})[:20]


def _check_service_and_slot(row: dict[str, str], clean: dict[str, Any], err: Err, scope: str | None) -> None:
    """The service (the scope's only, when scoped), the cohort, and the check-in day, time and timezone."""
    clean["service"] = (row.get("service") or scope or DEFAULT_SERVICE)[:64]
    if scope is not None and clean["service"] != scope:
        err("service", f"only participants of {scope} can be imported here, not {clean['service']!r}")
    cohort = (row.get("cohort") or "out_of_work").lower()
    if cohort not in COHORTS:
        err("cohort", f"must be out_of_work or in_work, not {cohort!r}")
        cohort = "out_of_work"
    clean["cohort"] = cohort
    day_text = (row.get("checkin_day") or "").lower()[:3]
    if row.get("checkin_day") and day_text not in DAYS:
        err("checkin_day", f"must be Mon..Sun, not {row['checkin_day']!r}")
    clean["checkin_day"] = DAYS.index(day_text) if day_text in DAYS else DEFAULT_SLOT[cohort][0]
    time_text = row.get("checkin_time") or DEFAULT_SLOT[cohort][1]
    try:
        clean["checkin_time"] = parse_hhmm(time_text).strftime("%H:%M")
    except ValueError as exc:
        err("checkin_time", str(exc))
    tz = row.get("timezone") or "Europe/London"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        err("timezone", f"unknown timezone {tz!r}")
    clean["timezone"] = tz


def _check_dates_and_language(
    row: dict[str, str], clean: dict[str, Any], err: Err, locales: frozenset[str], now: datetime | None
) -> None:
    """Support start and end (in order), the referral columns (as the dashboard checks them, given
    the time now: today is the row's own day, in its timezone), and a language the catalog has."""
    for column in ("support_start", "support_end"):
        clean[column] = None
        if row.get(column):
            try:
                clean[column] = date.fromisoformat(row[column])
            except ValueError:
                err(column, f"not a date like 2026-11-30: {row[column]!r}")
    clean.update(referral_columns(row, err))
    if clean["support_start"] and clean["support_end"] and clean["support_end"] < clean["support_start"]:
        err("support_end", "is before support_start")
    if now is not None:
        try:
            today = now.astimezone(ZoneInfo(clean["timezone"])).date()
        except (ZoneInfoNotFoundError, ValueError):  # named as an error already
            today = now.date()
        for column, reason in journey_date_problems(clean.get("referral_date"), clean["support_start"], today=today):
            err(column, reason)
    language = row.get("language") or FALLBACK_LOCALE
    if language not in locales:
        shown = language if len(language) <= 16 and language.isprintable() else language[:16] + "..."
        err("language", f"unknown language {shown!r}: must be one of {', '.join(sorted(locales))}")
    clean["language"] = language
