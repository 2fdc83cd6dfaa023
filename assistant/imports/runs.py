"""Every CSV import, from the dashboard or the CLI, is recorded: who, when, which file, what came of it.

The import itself is all or nothing (its own transaction); the record is written
after it in another, so a refused file is remembered with every error it had.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from assistant.db.models import ImportRun, Service
from assistant.db.units import transaction
from assistant.imports.appointments import import_appointments
from assistant.imports.caseload import import_caseload
from assistant.imports.caseload_csv import CsvImportError
from assistant.runtime import Runtime

IMPORTERS: dict[str, Any] = {"caseload": import_caseload, "appointments": import_appointments}
MAX_ERRORS_KEPT = 1000


@dataclass
class ImportOutcome:
    """What one import came to: its run on the record, the importer's report, the errors."""

    run: ImportRun
    report: Any | None  # the importer's report when the file was imported
    errors: list[str]


def run_import(
    rt: Runtime,
    kind: str,
    source: Path | bytes,
    *,
    file_name: str,
    by: str,
    via: str,
    now: datetime,
    service: Service | None = None,
) -> ImportOutcome:
    """Run one import and record it. With a service (the dashboard), only that service's rows may be in the file."""
    importer = IMPORTERS[kind]
    scope = service.slug if service is not None else None
    report: Any | None = None
    errors: list[str] = []
    services: frozenset[str] = frozenset()
    rows = 0
    try:
        report = importer(rt, source, now, scope=scope)
        rows, services = report.rows, report.services
    except CsvImportError as exc:
        errors, rows, services = exc.errors, exc.rows, exc.services
    with transaction(rt.engine) as db:
        run = ImportRun(
            service_id=service.id if service is not None else _one_service(db, services),
            kind=kind,
            file_name=_clean_name(file_name),
            imported_by=by[:254],
            via=via,
            at=now,
            outcome="rejected" if report is None else "imported",
            rows=rows,
            created=report.created if report else 0,
            updated=report.updated if report else 0,
            unchanged=report.unchanged if report else 0,
            errors=[e[:500] for e in errors[:MAX_ERRORS_KEPT]]
            + ([f"... and {len(errors) - MAX_ERRORS_KEPT} more"] if len(errors) > MAX_ERRORS_KEPT else []),
        )
        db.add(run)
    return ImportOutcome(run=run, report=report, errors=errors)


def _one_service(db: Session, slugs: frozenset[str]) -> int | None:
    """A CLI file's service when its rows are all one service's; otherwise it is on no service's page."""
    if len(slugs) != 1:
        return None
    found = db.exec(select(Service.id).where(Service.slug == next(iter(slugs)))).first()
    return int(found) if found is not None else None


def _clean_name(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in base if c.isprintable())[:255] or "upload.csv"


def recent_runs(db: Session, service_id: int, limit: int = 100) -> list[ImportRun]:
    return list(
        db.exec(
            select(ImportRun).where(ImportRun.service_id == service_id).order_by(col(ImportRun.id).desc()).limit(limit)
        ).all()
    )
