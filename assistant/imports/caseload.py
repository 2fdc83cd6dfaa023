"""Caseload import from CSV: all or nothing, every error listed, re-import changes nothing."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session, select

from assistant.care.measures import plan_questionnaires
from assistant.care.privacy import record_consent
from assistant.contact.checkins import plan_checkin
from assistant.contact.referrals import plan_welcome
from assistant.content.library import FALLBACK_LOCALE
from assistant.db.models import DueTask, Participant, Service, Specialist
from assistant.db.units import transaction
from assistant.imports.referrals import referral_columns, referral_source_allowed
from assistant.phones import PhoneError, to_e164
from assistant.runtime import Runtime
from assistant.sending.sender import clear_number_problem
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
PHONE_REFUSED = "this number cannot be used"
EMAIL_REFUSED = "this email address cannot be used"
EMAIL = re.compile(r"[a-z0-9][a-z0-9._%+'-]{0,63}@[a-z0-9-]+(\.[a-z0-9-]+)+")


class CsvImportError(ValueError):
    def __init__(self, errors: list[str], *, rows: int = 0, services: frozenset[str] = frozenset()) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors
        self.rows = rows  # the file's rows that held data, as far as it could be read
        self.services = services  # the services the file's rows name (slugs)


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    specialists_created: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    rows: int = 0
    services: frozenset[str] = frozenset()


def read_csv(source: Path | bytes) -> tuple[list[str], list[dict[str, str]], list[str]]:
    """Headers (lower-cased), rows, and problems reading the file (a path, or an upload's bytes)."""
    raw = source if isinstance(source, bytes) else source.read_bytes()
    if len(raw) > MAX_BYTES:
        return [], [], [f"file is larger than {MAX_BYTES // (1024 * 1024)} MB"]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [], [], [f"file is not UTF-8 text (byte {exc.start})"]
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
    if len(rows) - 1 > MAX_ROWS:
        return headers, [], [f"more than {MAX_ROWS} rows"]
    records: list[dict[str, str]] = []
    for row in rows[1:]:
        if not any(cell.strip() for cell in row):
            records.append({})
            continue
        records.append({h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(headers)})
    return headers, records, []


def _validate_row(
    line: int,
    row: dict[str, str],
    seen: dict[str, dict[str, int]],
    scope: str | None = None,
    locales: frozenset[str] = frozenset({FALLBACK_LOCALE}),
) -> tuple[dict[str, Any], list[str]]:
    errors: list[str] = []
    clean: dict[str, Any] = {}

    def err(column: str, reason: str) -> None:
        errors.append(f"line {line}, column {column}: {reason}")

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
    language = row.get("language") or FALLBACK_LOCALE
    if language not in locales:
        shown = language if len(language) <= 16 and language.isprintable() else language[:16] + "..."
        err("language", f"unknown language {shown!r}: must be one of {', '.join(sorted(locales))}")
    clean["language"] = language
    for column, value in (("participant_id", clean["service"] + "/" + pid), ("phone", clean.get("phone", ""))):
        if value and not value.endswith("/"):
            first = seen.setdefault(column, {}).get(value)
            if first is not None:
                err(column, f"duplicate of line {first}")
            else:
                seen[column][value] = line
    return clean, errors


def import_caseload(rt: Runtime, source: Path | bytes, now: datetime, *, scope: str | None = None) -> ImportReport:
    """Import a caseload file. With a scope (a service's slug, as the dashboard imports), every row
    must be that service's, and no error names a participant or specialist of another service."""
    headers, rows, problems = read_csv(source)
    if problems:
        raise CsvImportError(problems)
    report = ImportReport(ignored_columns=[h for h in headers if h not in REQUIRED + OPTIONAL])
    errors = [f"line 1, column {c}: required column is missing" for c in REQUIRED if c not in headers]
    if errors:
        raise CsvImportError(errors, rows=sum(1 for r in rows if r))
    cleaned: list[dict[str, Any]] = []
    seen: dict[str, dict[str, int]] = {}
    for offset, row in enumerate(rows):
        if not row:
            continue
        clean, row_errors = _validate_row(offset + 2, row, seen, scope, rt.catalog.known_locales)
        errors.extend(row_errors)
        cleaned.append(clean | {"line": offset + 2})
    if not cleaned and not errors:
        errors.append("file has no participant rows")
    report.rows = len(cleaned)
    report.services = frozenset(row["service"] for row in cleaned)
    with transaction(rt.engine) as db:
        if not errors:
            _apply(db, cleaned, report, now, errors, scoped=scope is not None)
        if errors:
            db.rollback()
            raise CsvImportError(errors, rows=report.rows, services=report.services)
    return report


def _apply(
    db: Session, rows: list[dict[str, Any]], report: ImportReport, now: datetime, errors: list[str], *, scoped: bool
) -> None:
    services: dict[str, Service] = {}
    specialists: dict[str, Specialist] = {}
    for row in rows:
        service = services.get(row["service"]) or db.exec(select(Service).where(Service.slug == row["service"])).first()
        if service is None:
            service = Service(slug=row["service"], name=row["service"])
            db.add(service)
            db.flush()
        services[row["service"]] = service
        specialist = (
            specialists.get(row["specialist_email"])
            or db.exec(select(Specialist).where(Specialist.email == row["specialist_email"])).first()
        )
        if specialist is not None and scoped and specialist.service_id != service.id:
            errors.append(f"line {row['line']}, column specialist_email: {EMAIL_REFUSED}")
            continue
        if specialist is None:
            assert service.id is not None
            specialist = Specialist(
                email=row["specialist_email"], name=row["specialist_name"], service_id=service.id, team=row["team"]
            )
            db.add(specialist)
            db.flush()
            report.specialists_created += 1
        elif (row["specialist_name"] and specialist.name != row["specialist_name"]) or (
            row["team"] and specialist.team != row["team"]
        ):
            specialist.name = row["specialist_name"] or specialist.name
            specialist.team = row["team"] or specialist.team
            db.add(specialist)
        specialists[row["specialist_email"]] = specialist
        assert service.id is not None and specialist.id is not None
        values = {
            "first_name": row["first_name"],
            "phone": row["phone"],
            "specialist_id": specialist.id,
            "cohort": row["cohort"],
            "checkin_day": row["checkin_day"],
            "checkin_time": row["checkin_time"],
            "checkin_every_weeks": COHORTS[row["cohort"]],
            "timezone": row["timezone"],
            "language": row["language"],
            "support_started_on": row["support_start"],
            "support_ends_on": row["support_end"],
            "tags": row["tags"],
        }
        values |= {k: row[k] for k in ("referral_date", "referral_source") if k in row}
        if not referral_source_allowed(db, service, row, errors):
            continue
        holder = db.exec(select(Participant).where(Participant.phone == row["phone"])).first()
        existing = db.exec(
            select(Participant).where(
                Participant.service_id == service.id, Participant.external_id == row["participant_id"]
            )
        ).first()
        if holder is not None and holder is not existing and scoped and holder.service_id != service.id:
            # Another service's participant: not even their id is this user's to see.
            errors.append(f"line {row['line']}, column phone: {PHONE_REFUSED}")
            continue
        if holder is not None and holder is not existing:
            owner = db.get(Service, holder.service_id)
            errors.append(
                f"line {row['line']}, column phone: already belongs to participant {holder.external_id}"
                f" in service {owner.slug if owner else '?'}"
            )
            continue
        if existing is None:
            participant = Participant(
                service_id=service.id, external_id=row["participant_id"], created_at=now, updated_at=now, **values
            )
            db.add(participant)
            db.flush()
            record_consent(
                db,
                participant,
                "sms_contact",
                granted=row["consent_sms"],
                by="caseload import",
                now=now,
                note="as recorded by the referring service",
            )
            plan_checkin(db, participant, now)
            plan_questionnaires(db, participant, now)
            plan_questionnaires(db, participant, now, reason="end")
            plan_welcome(db, participant, now)
            report.created += 1
            continue
        if existing.erased_at is not None:
            errors.append(f"line {row['line']}, column participant_id: this participant's record has been erased")
            continue
        changed = {k: v for k, v in values.items() if getattr(existing, k) != v}
        if existing.sms_consent != row["consent_sms"]:
            record_consent(db, existing, "sms_contact", granted=row["consent_sms"], by="caseload import", now=now)
            changed = changed or {"sms_consent": row["consent_sms"]}
        if not changed:
            report.unchanged += 1
            continue
        for key, value in changed.items():
            setattr(existing, key, value)
        existing.updated_at = now
        db.add(existing)
        if "phone" in changed:
            clear_number_problem(db, existing, now, why="phone_changed", by="caseload import")
        db.flush()
        if changed.keys() & {"checkin_day", "checkin_time", "checkin_every_weeks", "timezone"}:
            plan_checkin(db, existing, now)
        if "support_ends_on" in changed:
            for task in db.exec(
                select(DueTask).where(
                    DueTask.participant_id == existing.id, DueTask.kind == "questionnaire", DueTask.status == "pending"
                )
            ).all():
                if task.payload.get("reason") == "end":
                    task.status, task.outcome, task.done_at = "cancelled", "replanned", now
                    db.add(task)
            plan_questionnaires(db, existing, now, reason="end")
        if changed.keys() & {"support_ends_on", "support_started_on"}:
            from assistant.contact.campaigns import replan_for

            replan_for(db, existing, now)
        report.updated += 1
