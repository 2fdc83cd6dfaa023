"""Caseload import from CSV: all or nothing, every error listed, re-import changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from assistant.care.measures import plan_questionnaires
from assistant.care.privacy import record_consent
from assistant.contact.checkins import plan_checkin
from assistant.contact.referrals import plan_welcome
from assistant.db.models import Participant, Service, Specialist, TaskStatus
from assistant.db.open_items import pending_tasks
from assistant.db.units import transaction
from assistant.imports.caseload_csv import (
    COHORTS,
    DEFAULT_SERVICE,
    EMAIL_REFUSED,
    OPTIONAL,
    PHONE_REFUSED,
    REQUIRED,
    CsvImportError,
    read_csv,
    validate_row,
)
from assistant.imports.referrals import referral_source_allowed
from assistant.runtime import Runtime
from assistant.sending.failures import clear_number_problem


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    specialists_created: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    rows: int = 0
    services: frozenset[str] = frozenset()


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
    bad_lines: set[int] = set()
    for offset, row in enumerate(rows):
        if not row:
            continue
        clean, row_errors = validate_row(offset + 2, row, seen, scope, rt.catalog.known_locales, now)
        errors.extend(row_errors)
        if row_errors:
            bad_lines.add(offset + 2)
        # The optional columns this row fills: an update changes only those (a blank is no change).
        given = frozenset(column for column in OPTIONAL if row.get(column))
        cleaned.append(clean | {"line": offset + 2, "given": given})
    if not cleaned and not errors:
        errors.append("file has no participant rows")
    report.rows = len(cleaned)
    report.services = frozenset(row["service"] for row in cleaned)
    with transaction(rt.engine) as db:
        # The rows that read well are tried against the record too, so one refusal lists every
        # problem (a number held by someone else beside a malformed one); then nothing is kept.
        _apply(
            db, [row for row in cleaned if row["line"] not in bad_lines], report, now, errors, scoped=scope is not None
        )
        if errors:
            db.rollback()
            raise CsvImportError(sorted(errors, key=_line_of), rows=report.rows, services=report.services)
    return report


def _line_of(error: str) -> int:
    """The line an error names ("line 4, column phone: ..."), for listing errors in file order."""
    head = error.removeprefix("line ").split(",", 1)[0]
    return int(head) if head.isdigit() else 0


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
        specialist = _specialist_for(db, row, service, specialists, report, errors, scoped=scoped)
        if specialist is None:
            continue
        assert service.id is not None and specialist.id is not None
        values = _participant_values(row, specialist.id)
        if not referral_source_allowed(db, service, row, errors):
            continue
        existing = db.exec(
            select(Participant).where(
                Participant.service_id == service.id, Participant.external_id == row["participant_id"]
            )
        ).first()
        if (problem := _phone_problem(db, row, service, existing, scoped=scoped)) is not None:
            errors.append(problem)
            continue
        if existing is None:
            _create(db, row, service.id, values, now)
            report.created += 1
        elif existing.erased_at is not None:
            errors.append(f"line {row['line']}, column participant_id: this participant's record has been erased")
        elif _update(db, row, existing, values, now):
            report.updated += 1
        else:
            report.unchanged += 1


def _specialist_for(
    db: Session,
    row: dict[str, Any],
    service: Service,
    specialists: dict[str, Specialist],
    report: ImportReport,
    errors: list[str],
    *,
    scoped: bool,
) -> Specialist | None:
    """The row's specialist, made if new and renamed or moved team if the row says so; None (with
    the error listed) when a scoped import names another service's specialist."""
    specialist = (
        specialists.get(row["specialist_email"])
        or db.exec(select(Specialist).where(Specialist.email == row["specialist_email"])).first()
    )
    if specialist is not None and specialist.service_id != service.id:
        # A participant is seen, and their flags answered, within their specialist's service only: one
        # in another service would raise flags nobody could open.
        if scoped:
            errors.append(f"line {row['line']}, column specialist_email: {EMAIL_REFUSED}")
        else:
            home = db.get(Service, specialist.service_id)
            hint = (
                " (a row with no service is for the 'default' service: name it)"
                if service.slug == DEFAULT_SERVICE
                else ""
            )
            errors.append(
                f"line {row['line']}, column specialist_email: {row['specialist_email']} works in service"
                f" {home.slug if home else '?'}, not {service.slug}{hint}"
            )
        return None
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
    return specialist


# The participant's fields each optional column sets.
FIELDS_OF_COLUMN = {
    "cohort": ("cohort", "checkin_every_weeks"),
    "checkin_day": ("checkin_day",),
    "checkin_time": ("checkin_time",),
    "timezone": ("timezone",),
    "language": ("language",),
    "support_start": ("support_started_on",),
    "support_end": ("support_ends_on",),
    "tags": ("tags",),
    "referral_date": ("referral_date",),
    "referral_source": ("referral_source",),
}


def _participant_values(row: dict[str, Any], specialist_id: int) -> dict[str, Any]:
    """The participant's columns as the row sets them (defaults where it leaves one blank)."""
    values = {
        "first_name": row["first_name"],
        "phone": row["phone"],
        "specialist_id": specialist_id,
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
    return values | {k: row[k] for k in ("referral_date", "referral_source") if k in row}


def _phone_problem(
    db: Session, row: dict[str, Any], service: Service, existing: Participant | None, *, scoped: bool
) -> str | None:
    """The error when the row's phone already belongs to someone else; a scoped import does not say whom."""
    holder = db.exec(select(Participant).where(Participant.phone == row["phone"])).first()
    if holder is None or holder is existing:
        return None
    if scoped and holder.service_id != service.id:
        # Another service's participant: not even their id is this user's to see.
        return f"line {row['line']}, column phone: {PHONE_REFUSED}"
    owner = db.get(Service, holder.service_id)
    return (
        f"line {row['line']}, column phone: already belongs to participant {holder.external_id}"
        f" in service {owner.slug if owner else '?'}"
    )


def _create(db: Session, row: dict[str, Any], service_id: int, values: dict[str, Any], now: datetime) -> None:
    """A new participant: their consent as the referrer recorded it, then their check-ins,
    questionnaires and welcome planned."""
    participant = Participant(
        service_id=service_id, external_id=row["participant_id"], created_at=now, updated_at=now, **values
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


def _update(db: Session, row: dict[str, Any], existing: Participant, values: dict[str, Any], now: datetime) -> bool:
    """Apply what the row changes, re-planning what depends on it; False when nothing changed.

    Only the columns the row fills are applied: a column left out or blank keeps what staff and the
    participant set since (a check-in time, a support start, a cohort after a job start). Consent
    can be withdrawn by a file, never given back: a person who withdrew it gives it again themselves."""
    settable = {"first_name", "phone", "specialist_id"} | {
        name for column in row["given"] for name in FIELDS_OF_COLUMN.get(column, ())
    }
    changed = {k: v for k, v in values.items() if k in settable and getattr(existing, k) != v}
    if existing.sms_consent and not row["consent_sms"]:
        record_consent(db, existing, "sms_contact", granted=False, by="caseload import", now=now)
        changed = changed or {"sms_consent": False}
    if not changed:
        return False
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
        _replan_end_questionnaires(db, existing, now)
    if changed.keys() & {"support_ends_on", "support_started_on"}:
        from assistant.contact.campaigns import replan_for

        replan_for(db, existing, now)
    return True


def _replan_end_questionnaires(db: Session, participant: Participant, now: datetime) -> None:
    """Support ends on another day: the pending end-of-support questionnaire is planned again."""
    for task in db.exec(pending_tasks(participant.id, "questionnaire")).all():
        if task.payload.get("reason") == "end":
            task.status, task.outcome, task.done_at = TaskStatus.CANCELLED, "replanned", now
            db.add(task)
    plan_questionnaires(db, participant, now, reason="end")
