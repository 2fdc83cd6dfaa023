"""A participant's record, and what a specialist does on it: pause, resume, preferences, a text, transfer."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlmodel import col, select
from werkzeug.wrappers import Response as WerkzeugResponse

from assistant import engine
from assistant.care.access import transfer_targets, visible_participant
from assistant.care.audit import audit
from assistant.care.measures import measures_for_export, participant_trajectory
from assistant.care.rhythm import rhythm_of
from assistant.contact import appointments as appts
from assistant.contact.checkins import plan_checkin
from assistant.contact.pause import set_paused
from assistant.contact.policy import may_get_a_text_from_staff
from assistant.content.wording import lock_screen_words, pressure_phrases
from assistant.db.models import (
    Appointment,
    Flag,
    FlagStatus,
    Specialist,
)
from assistant.db.units import participant_unit
from assistant.outbox.writer import queue_text
from assistant.reporting.export import export_participant
from assistant.reporting.formats import ATTRIBUTION
from assistant.timing import DAYS, parse_hhmm
from assistant.views_data import (
    answers,
    caseload_rows,
    chart,
    thread,
)
from assistant.web.common import (
    me,
    now,
    participant_or_404,
    participant_unit_or_404,
    rt,
    unit,
)
from assistant.web.filters import zone
from assistant.web.flag_cards import flag_cards
from assistant.web.plain import rhythm_words
from assistant.web.window_form import participant_windows

bp = Blueprint("participant", __name__)


# Open flags first, urgent before action before information, then newest first.
SEVERITY_FIRST = sa.case({"urgent": 0, "action": 1}, value=col(Flag.severity), else_=2)


@bp.get("/participants/<int(max=2147483647):participant_id>")
@login_required
def participant(participant_id: int) -> str:
    with unit() as db:
        person = participant_or_404(db, participant_id)
        audit(db, me(), "view_record", now(), participant_id=person.id)
        specialist = db.get(Specialist, person.specialist_id)
        oldest_first = request.args.get("order") == "oldest"
        messages = thread(db, participant_id)
        flags = list(
            db.exec(
                select(Flag)
                .where(Flag.participant_id == participant_id)
                .order_by(col(Flag.status) == FlagStatus.RESOLVED, SEVERITY_FIRST, col(Flag.id).desc())
            ).all()
        )
        rhythm, kept = rhythm_of(db, person)
        data = {
            "p": person,
            "specialist": specialist,
            "summary": caseload_rows(db, [person])[0],
            "rhythm": rhythm_words(rhythm, kept.first_pending_at if kept else None, now(), zone()),
            "oldest_first": oldest_first,
            "messages": messages if oldest_first else messages[::-1],
            "cards": flag_cards(db, [f for f in flags if f.status != FlagStatus.RESOLVED]),
            "answers": answers(db, participant_id)[:50],
            "appointments": db.exec(
                select(Appointment)
                .where(Appointment.participant_id == participant_id)
                .order_by(col(Appointment.starts_at).desc())
            ).all(),
            "flags": flags,
            "chart": chart(db, participant_id),
            "trajectory": participant_trajectory(db, participant_id),
            "measures": measures_for_export(db, participant_id),
            "attribution": ATTRIBUTION,
            "specialists": transfer_targets(db, me(), person),
            "kinds": appts.KINDS,
            "outcomes": appts.OUTCOMES,
        }
    return render_template("participant.html", **data)


@bp.post("/participants/<int(max=2147483647):participant_id>/pause")
@login_required
def pause(participant_id: int) -> WerkzeugResponse:
    return _pause_or_resume(
        participant_id, True, "Automated texts are paused. Nothing scheduled will go until you resume."
    )


@bp.post("/participants/<int(max=2147483647):participant_id>/resume")
@login_required
def resume(participant_id: int) -> WerkzeugResponse:
    return _pause_or_resume(participant_id, False, "Automated texts resumed.")


def _pause_or_resume(participant_id: int, paused: bool, done: str) -> WerkzeugResponse:
    with participant_unit_or_404(participant_id) as (db, person):
        set_paused(db, person, paused, now())
        audit(db, me(), "pause" if paused else "resume", now(), participant_id=participant_id)
    flash(done)
    return redirect(url_for("participant.participant", participant_id=participant_id))


@bp.post("/participants/<int(max=2147483647):participant_id>/preferences")
@login_required
def preferences(participant_id: int) -> WerkzeugResponse:
    with unit() as db:
        participant_or_404(db, participant_id)  # nothing about the form until we know they may see this record
    form = request.form
    errors = []
    day = form.get("checkin_day", "").lower()[:3]
    if day not in DAYS:
        errors.append("Choose a check-in day.")
    try:
        checkin_time = parse_hhmm(form.get("checkin_time", "")).strftime("%H:%M")
        allowed_from = parse_hhmm(form.get("allowed_from", "08:00")).strftime("%H:%M")
        allowed_until = parse_hhmm(form.get("allowed_until", "20:00")).strftime("%H:%M")
    except ValueError:
        errors.append("Give times as HH:MM, for example 10:30.")
        checkin_time = allowed_from = allowed_until = ""
    every = form.get("every_weeks", "1")
    if every not in ("1", "2", "4"):
        errors.append("Check in every 1, 2 or 4 weeks.")
    windows_text = None
    if not errors:
        windows_text, problem = participant_windows(
            allowed_from, allowed_until, form.get("second_window", ""), checkin_time
        )
        if problem:
            errors.append(problem)
    language = form.get("language", "en-GB")
    if language not in ("en-GB",):
        errors.append("Only English (en-GB) wording is available so far.")
    if errors:
        for error in errors:
            flash(error, "error")
        return redirect(url_for("participant.participant", participant_id=participant_id))
    with participant_unit_or_404(participant_id) as (db, person):
        person.checkin_day, person.checkin_time, person.checkin_every_weeks = DAYS.index(day), checkin_time, int(every)
        person.allowed_from, person.allowed_until = allowed_from, allowed_until
        person.contact_windows = windows_text
        person.show_location = form.get("show_location") == "yes"
        person.language, person.updated_at = language, now()
        db.add(person)
        plan_checkin(db, person, now())
        audit(
            db,
            me(),
            "preferences",
            now(),
            participant_id=participant_id,
            day=day,
            time=checkin_time,
            every=every,
            allowed=windows_text or f"{allowed_from}-{allowed_until}",
        )
    flash("Contact preferences saved.")
    return redirect(url_for("participant.participant", participant_id=participant_id))


def _check_text(text: str) -> tuple[int, bool, list[str], list[str]]:
    return engine.segment_count(text), engine.is_gsm7(text), lock_screen_words(text), pressure_phrases(text)


@bp.post("/participants/<int(max=2147483647):participant_id>/message")
@login_required
def message(participant_id: int) -> Any:
    text = request.form.get("body", "").replace("\r\n", "\n").strip()
    with unit() as db:
        person = participant_or_404(db, participant_id)
    if not text or len(text) > 1600 or any(ord(c) < 32 and c != "\n" for c in text):
        flash("Write a message of 1 to 1,600 characters.", "error")
        return redirect(url_for("participant.participant", participant_id=participant_id))
    segments, gsm, words, pressure = _check_text(text)
    if request.form.get("confirm") != "yes":
        return render_template(
            "message_preview.html", p=person, body=text, segments=segments, gsm=gsm, words=words, pressure=pressure
        )
    if not may_get_a_text_from_staff(person):
        flash("This participant cannot be texted (opted out, unreachable or no consent to texts).", "error")
        return redirect(url_for("participant.participant", participant_id=participant_id))
    with participant_unit(rt().engine, participant_id) as (db, locked):
        assert locked is not None
        message_id = queue_text(
            db, phone=locked.phone, body=text, key="staff/one_off", now=now(), participant_id=participant_id
        )
        audit(db, me(), "send_message", now(), participant_id=participant_id, segments=segments)
    current_app.extensions["assistant.sending.dispatch"].kick([message_id])
    flash("Message sent.")
    return redirect(url_for("participant.participant", participant_id=participant_id) + "#thread")


@bp.post("/participants/<int(max=2147483647):participant_id>/transfer")
@login_required
def transfer(participant_id: int) -> WerkzeugResponse:
    target = request.form.get("specialist_id", type=int)
    if target is not None and not 1 <= target <= 2147483647:
        target = None
    with participant_unit_or_404(participant_id) as (db, person):
        new_owner = next((s for s in transfer_targets(db, me(), person) if s.id == target), None)
        if new_owner is None:  # not theirs to choose (another team, another service) or nobody
            flash("Choose one of the specialists listed.", "error")
            return redirect(url_for("participant.participant", participant_id=participant_id))
        before = person.specialist_id
        person.specialist_id = new_owner.id  # type: ignore[assignment]
        person.updated_at = now()
        db.add(person)
        for flag in db.exec(
            select(Flag).where(Flag.participant_id == participant_id, Flag.status != FlagStatus.RESOLVED)
        ).all():
            flag.specialist_id = new_owner.id  # type: ignore[assignment]
            db.add(flag)  # open flags go with the participant: never to someone who no longer owns them
        audit(
            db,
            me(),
            "transfer",
            now(),
            participant_id=participant_id,
            from_specialist=before,
            to_specialist=new_owner.id,
        )
    flash(f"Transferred to {new_owner.name or new_owner.email}. The history stays with the record.")
    if visible_participant_after(participant_id):
        return redirect(url_for("participant.participant", participant_id=participant_id))
    return redirect(url_for("caseload.caseload"))


def visible_participant_after(participant_id: int) -> bool:
    with unit() as db:
        return visible_participant(db, me(), participant_id) is not None


@bp.get("/participants/<int(max=2147483647):participant_id>/export.json")
@login_required
def export(participant_id: int) -> Response:
    with unit() as db:
        person = participant_or_404(db, participant_id)
        record = export_participant(db, person)
        audit(db, me(), "export_record", now(), participant_id=participant_id)
    response = Response(json.dumps(record, indent=2, ensure_ascii=False), mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="participant-{person.id}.json"'
    return response
