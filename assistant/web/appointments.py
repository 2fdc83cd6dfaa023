"""Adding, moving and recording the outcome of a participant's appointments."""

from __future__ import annotations

import re
import uuid

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import login_required
from sqlmodel import Session
from werkzeug.wrappers import Response as WerkzeugResponse

from assistant.care.audit import audit
from assistant.contact import appointments as appts
from assistant.db.models import (
    Appointment,
)
from assistant.imports.appointments import apply_change, parse_local
from assistant.web.common import (
    me,
    now,
    participant_unit_or_404,
)

bp = Blueprint("appointments", __name__)


@bp.post("/participants/<int(max=2147483647):participant_id>/appointments")
@login_required
def appointment_add(participant_id: int) -> WerkzeugResponse:
    form = request.form
    with participant_unit_or_404(participant_id) as (db, person):
        try:
            starts_at = parse_local(form.get("starts_at", "").replace("T", " "), person.timezone)
        except ValueError as exc:
            flash(str(exc), "error")
            return redirect(url_for("participant.participant", participant_id=participant_id))
        kind = form.get("kind", "")
        duration = form.get("duration_minutes", "60")
        if kind not in appts.KINDS or not re.fullmatch(r"[0-9]{1,3}", duration) or not 5 <= int(duration) <= 480:
            flash("Choose a kind and a duration from 5 to 480 minutes.", "error")
            return redirect(url_for("participant.participant", participant_id=participant_id))
        if starts_at <= now():
            flash("That time has passed: record past appointments with their outcome.", "error")
            return redirect(url_for("participant.participant", participant_id=participant_id))
        appointment = Appointment(
            participant_id=participant_id,
            external_id=f"D{uuid.uuid4().hex[:12]}",
            starts_at=starts_at,
            kind=kind,
            duration_minutes=int(duration),
            location=form.get("location", "")[:300],
            with_whom=form.get("with_whom", "")[:200],
            created_at=now(),
            updated_at=now(),
        )
        db.add(appointment)
        db.flush()
        reminders = apply_change(db, appointment, person, now(), moved=True, outcome_changed=False)
        audit(db, me(), "appointment_add", now(), participant_id=participant_id, appointment=appointment.id)
    flash(_saying("Appointment added", reminders))
    return redirect(url_for("participant.participant", participant_id=participant_id) + "#appointments")


def _saying(done: str, reminders: int) -> str:
    """What the page says happened, from what was planned (reminders can be turned off, or too late)."""
    if reminders == 0:
        return f"{done}. No reminder text is planned for it: let them know another way if needed."
    return f"{done}; {reminders} reminder text{'s' if reminders > 1 else ''} planned."


def _appointment_or_404(db: Session, participant_id: int, appointment_id: int) -> Appointment:
    appointment = db.get(Appointment, appointment_id)
    if appointment is None or appointment.participant_id != participant_id:
        abort(404)
    return appointment


@bp.post("/participants/<int(max=2147483647):participant_id>/appointments/<int(max=2147483647):appointment_id>/move")
@login_required
def appointment_move(participant_id: int, appointment_id: int) -> WerkzeugResponse:
    with participant_unit_or_404(participant_id) as (db, person):
        appointment = _appointment_or_404(db, participant_id, appointment_id)
        try:
            starts_at = parse_local(request.form.get("starts_at", "").replace("T", " "), person.timezone)
        except ValueError as exc:
            flash(str(exc), "error")
            return redirect(url_for("participant.participant", participant_id=participant_id))
        if starts_at <= now() or appointment.outcome is not None:
            flash("Only an upcoming appointment can move, to a time that has not passed.", "error")
            return redirect(url_for("participant.participant", participant_id=participant_id))
        appointment.starts_at, appointment.updated_at = starts_at, now()
        appointment.version += 1
        db.add(appointment)
        db.flush()
        reminders = apply_change(db, appointment, person, now(), moved=True, outcome_changed=False)
        audit(db, me(), "appointment_move", now(), participant_id=participant_id, appointment=appointment_id)
    flash(_saying("Appointment moved", reminders))
    return redirect(url_for("participant.participant", participant_id=participant_id) + "#appointments")


@bp.post("/participants/<int(max=2147483647):participant_id>/appointments/<int(max=2147483647):appointment_id>/outcome")
@login_required
def appointment_outcome(participant_id: int, appointment_id: int) -> WerkzeugResponse:
    outcome = request.form.get("outcome", "")
    with participant_unit_or_404(participant_id) as (db, person):
        appointment = _appointment_or_404(db, participant_id, appointment_id)
        if outcome not in appts.OUTCOMES:
            flash("Choose an outcome.", "error")
            return redirect(url_for("participant.participant", participant_id=participant_id))
        if outcome in ("attended", "dna") and appointment.starts_at and appointment.starts_at > now():
            flash("An appointment can only be attended or missed once it has started.", "error")
            return redirect(url_for("participant.participant", participant_id=participant_id))
        changed = appointment.outcome != outcome
        appointment.outcome, appointment.outcome_at, appointment.updated_at = outcome, now(), now()
        appointment.version += 1
        db.add(appointment)
        db.flush()
        if changed:
            apply_change(db, appointment, person, now(), moved=False, outcome_changed=True)
        audit(
            db,
            me(),
            "appointment_outcome",
            now(),
            participant_id=participant_id,
            appointment=appointment_id,
            outcome=outcome,
        )
    flash("Missed appointment recorded: the follow-up has started." if outcome == "dna" else "Outcome recorded.")
    return redirect(url_for("participant.participant", participant_id=participant_id) + "#appointments")
