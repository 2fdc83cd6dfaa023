"""The Today page: one specialist's list of what to do, most urgent first (assistant/reporting/today.py).

A specialist sees their own list; a team lead or service admin picks a specialist in their
reach. Each item is done with one form (CSRF-protected like every form here) that logs the
contact and is written to the audit log.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response as WerkzeugResponse

from assistant.care.access import specialists_in_reach, visible_participant
from assistant.care.audit import audit
from assistant.db.models import Specialist
from assistant.reporting import today
from assistant.web.common import me, now, rt, unit

bp = Blueprint("today", __name__)


def _chosen(choices: list[Specialist]) -> Specialist | None:
    """Whose list: the specialist's own; for a manager, the one picked (or their own caseload)."""
    user = me()
    if user.role == "specialist":
        return next((s for s in choices if s.id == user.specialist_id), None)
    picked = request.args.get("specialist", type=int) or user.specialist_id
    return next((s for s in choices if s.id == picked), None)


@bp.get("/today")
@login_required
def page() -> str:
    tz = rt().settings.default_timezone
    with unit() as db:
        choices = specialists_in_reach(db, me())
        chosen = _chosen(choices)
        items = today.day_list(db, chosen.id, now(), tz) if chosen is not None and chosen.id is not None else []
    return render_template(
        "today.html",
        items=items,
        chosen=chosen,
        choices=choices if me().role != "specialist" else [],
        channels=today.CHANNELS,
        outcomes=today.OUTCOMES,
        day=now(),
    )


@bp.post("/today/done")
@login_required
def done() -> WerkzeugResponse:
    ref = request.form.get("item", "")[:40]
    back = url_for(".page", specialist=request.form.get("specialist", type=int))
    with unit() as db:
        participant_id = today.participant_of(db, ref)
        if participant_id is None:
            flash("That has already been done, or it is no longer on the list.")
            return redirect(back)
        person = visible_participant(db, me(), participant_id)
        if person is None:
            abort(404)  # not in this user's reach: as if it did not exist
        channel, outcome = request.form.get("channel", ""), request.form.get("outcome", "")
        try:
            today.complete(
                db, ref, by=me().email, channel=channel, outcome=outcome, note=request.form.get("note", ""), now=now()
            )
        except ValueError as exc:
            flash(str(exc), "error")
            return redirect(back)
        audit(db, me(), "today_done", now(), participant_id=participant_id, item=ref, channel=channel, outcome=outcome)
        name = person.first_name
    flash(f"Done: contact with {name} logged ({today.OUTCOMES[outcome].lower()}).")
    return redirect(back)
