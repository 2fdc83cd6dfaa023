"""Appointment import from CSV: all or nothing, every error named, re-import changes nothing.

A changed row updates the appointment: a new time re-plans its reminders, a
cancellation withdraws them, and an outcome of `dna` starts the follow-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from assistant.care import rules
from assistant.contact import appointments
from assistant.contact.appointments import CLOSED, KINDS, OUTCOMES
from assistant.db.models import Appointment, DueTask, Participant, Service
from assistant.db.open_items import LADDER_TASKS
from assistant.db.units import among, lock_participant, transaction
from assistant.imports.caseload_csv import CsvImportError, read_csv
from assistant.runtime import Runtime

REQUIRED = ("appointment_id", "participant_id", "starts_at", "kind")
OPTIONAL = ("duration_minutes", "location", "outcome", "with_whom", "service")
FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d/%m/%Y %H:%M")


@dataclass
class AppointmentReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rows: int = 0
    services: frozenset[str] = frozenset()


def parse_local(text: str, tz: str) -> datetime:
    """A wall-clock time in `tz` as UTC; refuses times the clock change skips or repeats."""
    for fmt in FORMATS:
        try:
            naive = datetime.strptime(text.strip(), fmt)
            break
        except ValueError:
            continue
    else:
        raise ValueError(f"not a date and time like 27/11/2026 14:00 or 2026-11-27 14:00: {text!r}")
    if not 2000 <= naive.year <= 2100:
        raise ValueError(f"{text} is not a plausible appointment date")
    zone = ZoneInfo(tz)
    early, late = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    if early.utcoffset() != late.utcoffset():
        round_trip = early.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        if round_trip != naive:
            raise ValueError(f"{text} does not exist in {tz} (the clocks go forward)")
        raise ValueError(f"{text} happens twice in {tz} (the clocks go back): give another time")
    return early.astimezone(UTC)


def _participants(db: Session, scope: str | None, external_ids: set[str]) -> dict[str, list[Participant]]:
    """The participants the file names (by their external id; in several services without a scope):
    a day's outcomes for a few people do not load the whole service."""
    found: dict[str, list[Participant]] = {}
    query = select(Participant).where(among(db, Participant.external_id, external_ids, of=sa.String))
    if scope is not None:
        query = query.join(Service, col(Service.id) == col(Participant.service_id)).where(Service.slug == scope)
    for participant in db.exec(query).all():
        found.setdefault(participant.external_id, []).append(participant)
    return found


def _validate(
    line: int,
    row: dict[str, str],
    people: dict[str, list[Participant]],
    existing: dict[tuple[int, str], Appointment],
    seen: dict[tuple[str, str], int],
    now: datetime,
) -> tuple[dict[str, Any], list[str]]:
    errors: list[str] = []

    def err(column: str, reason: str) -> None:
        errors.append(f"line {line}, column {column}: {reason}")

    for column in REQUIRED:
        if not row.get(column):
            err(column, "is required")
    clean: dict[str, Any] = {"line": line, "appointment_id": row.get("appointment_id", "")[:64]}
    candidates = people.get(row.get("participant_id", ""), [])
    participant = candidates[0] if len(candidates) == 1 else None
    if row.get("participant_id") and not candidates:
        err("participant_id", f"no participant {row['participant_id']!r}")
    elif len(candidates) > 1:
        err("participant_id", f"{row['participant_id']!r} is in more than one service")
    clean["participant"] = participant
    kind = row.get("kind", "").lower()
    if kind and kind not in KINDS:
        err("kind", f"must be one of {', '.join(KINDS)}, not {kind!r}")
    clean["kind"] = kind
    outcome = row.get("outcome", "").lower() or None
    if outcome and outcome not in OUTCOMES:
        err("outcome", f"must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    clean["outcome"] = outcome
    duration = row.get("duration_minutes") or "60"
    whole = re.fullmatch(r"[0-9]{1,3}", duration) is not None
    if not whole or not 5 <= int(duration) <= 480:
        err("duration_minutes", "must be a whole number of minutes from 5 to 480")
    clean["duration_minutes"] = int(duration) if whole else 60
    clean["location"] = row.get("location", "")[:300]
    clean["with_whom"] = row.get("with_whom", "")[:200]
    if participant is not None and row.get("starts_at"):
        try:
            starts_at = parse_local(row["starts_at"], participant.timezone)
            clean["starts_at"] = starts_at
            before = existing.get((participant.id or 0, clean["appointment_id"]))
            moved = before is None or before.starts_at != starts_at
            if outcome is None and moved and starts_at <= now:
                err("starts_at", "is in the past: give an outcome for a past appointment")
        except ValueError as exc:
            err("starts_at", str(exc))
    key = (row.get("participant_id", ""), clean["appointment_id"])
    if clean["appointment_id"]:
        if key in seen:
            err("appointment_id", f"duplicate of line {seen[key]}")
        seen[key] = line
    return clean, errors


def import_appointments(
    rt: Runtime, source: Path | bytes, now: datetime, *, scope: str | None = None
) -> AppointmentReport:
    """Import an appointments file. With a scope (a service's slug), only that service's participants
    are matched: anyone else is "no participant", whether or not they exist elsewhere."""
    headers, rows, problems = read_csv(source)
    if problems:
        raise CsvImportError(problems)
    errors = [f"line 1, column {c}: required column is missing" for c in REQUIRED if c not in headers]
    if errors:
        raise CsvImportError(errors, rows=sum(1 for r in rows if r))
    report = AppointmentReport()
    with transaction(rt.engine) as db:
        people = _participants(db, scope, {row["participant_id"] for row in rows if row.get("participant_id")})
        named = [person.id for found in people.values() for person in found]
        query = select(Appointment).where(among(db, Appointment.participant_id, named))
        existing = {(a.participant_id, a.external_id): a for a in db.exec(query).all()}
        cleaned = []
        seen: dict[tuple[str, str], int] = {}
        for offset, row in enumerate(rows):
            if row:
                clean, row_errors = _validate(offset + 2, row, people, existing, seen, now)
                errors.extend(row_errors)
                cleaned.append(clean)
        if not cleaned and not errors:
            errors.append("file has no appointment rows")
        slugs = {s.id: s.slug for s in db.exec(select(Service)).all()}
        report.rows = len(cleaned)
        report.services = frozenset(slugs[c["participant"].service_id] for c in cleaned if c["participant"])
        if errors:
            raise CsvImportError(errors, rows=report.rows, services=report.services)
        for clean in cleaned:
            _apply(db, clean, existing, report, now)
    return report


def _apply(
    db: Session,
    clean: dict[str, Any],
    existing: dict[tuple[int, str], Appointment],
    report: AppointmentReport,
    now: datetime,
) -> None:
    participant: Participant = clean["participant"]
    assert participant.id is not None
    lock_participant(db, participant.id)
    values = {k: clean[k] for k in ("starts_at", "kind", "duration_minutes", "location", "with_whom", "outcome")}
    appointment = existing.get((participant.id, clean["appointment_id"]))
    if appointment is None:
        appointment = Appointment(
            participant_id=participant.id,
            external_id=clean["appointment_id"],
            created_at=now,
            updated_at=now,
            outcome_at=now if values["outcome"] else None,
            **values,
        )
        db.add(appointment)
        db.flush()
        report.created += 1
        apply_change(db, appointment, participant, now, moved=True, outcome_changed=bool(values["outcome"]))
        return
    changed = {k: v for k, v in values.items() if getattr(appointment, k) != v}
    if not changed:
        report.unchanged += 1
        return
    for key, value in changed.items():
        setattr(appointment, key, value)
    appointment.updated_at = now
    if "outcome" in changed:
        appointment.outcome_at = now
    if changed.keys() & {"starts_at", "outcome", "kind"}:
        appointment.version += 1
    db.add(appointment)
    db.flush()
    report.updated += 1
    apply_change(
        db,
        appointment,
        participant,
        now,
        moved="starts_at" in changed or "kind" in changed,
        outcome_changed="outcome" in changed,
    )


def apply_change(
    db: Session,
    appointment: Appointment,
    participant: Participant,
    now: datetime,
    *,
    moved: bool,
    outcome_changed: bool,
) -> int:
    """What a new, moved, cancelled or missed appointment means for the schedule; how many
    reminder texts it now has planned."""
    planned: list[DueTask] = []
    if appointment.outcome in CLOSED or appointment.outcome == "attended":
        appointments.cancel_tasks(db, appointment, appointments.REMINDER_TASKS, appointment.outcome or "", now)
        appointments.withdraw_reminder_messages(db, appointment, appointment.outcome or "", now)
    elif moved and appointment.outcome is None:
        planned = appointments.replan(db, appointment, participant, now, "moved")
    if outcome_changed and appointment.outcome != "dna":
        appointments.cancel_tasks(db, appointment, LADDER_TASKS, "outcome_changed", now)
    if outcome_changed and appointment.outcome == "dna":
        appointments.cancel_tasks(db, appointment, appointments.REMINDER_TASKS, "dna", now)
        appointments.start_ladder(db, appointment, participant, now)
        rules.after_dna(db, appointment, participant, now)
    return sum(task.kind == "appt_reminder" for task in planned)
