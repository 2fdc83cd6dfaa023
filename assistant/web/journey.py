"""The journey page of a participant's record: referral, job starts, and the end of support.

Each form is the specialist's own act, audited; the functions behind them are the ones the
golden conversations and the CLI use (referrals, work, support_end).
"""

from __future__ import annotations

from datetime import date

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlmodel import col, select
from werkzeug.wrappers import Response as WerkzeugResponse

from assistant.care.audit import audit
from assistant.contact.journey_state import local_today, support_ended
from assistant.contact.referrals import ReferralError, clean_referral, journey_date_problems, start_support
from assistant.contact.support_end import EXIT_REASONS, ExitError, end_support, send_goodbye
from assistant.contact.work import SECTORS, JobStartError, counts_as_outcome, record_job_start
from assistant.db.journey_settings import referral_choices
from assistant.db.models import JobStart
from assistant.db.service_settings import settings_for
from assistant.web.common import me, now, participant_unit_or_404, rt, unit
from assistant.web.common import participant_or_404 as _participant_or_404

bp = Blueprint("journey", __name__)
ID = "<int(max=2147483647):participant_id>"


def _back(participant_id: int, notice: str, category: str = "message") -> WerkzeugResponse:
    """Back to the journey page, with a notice of what the form did or why it did nothing."""
    flash(notice, category)
    return redirect(url_for(".journey", participant_id=participant_id))


@bp.get(f"/participants/{ID}/journey")
@login_required
def journey(participant_id: int) -> str:
    with unit() as db:
        person = _participant_or_404(db, participant_id)
        audit(db, me(), "view_record", now(), participant_id=person.id, page="journey")
        jobs = db.exec(
            select(JobStart).where(JobStart.participant_id == participant_id).order_by(col(JobStart.started_on).desc())
        ).all()
        sources = referral_choices(settings_for(db, person))
    return render_template(  # after the unit of work: the page's own helpers open theirs
        "journey.html",
        p=person,
        jobs=[(job, counts_as_outcome(job)) for job in jobs],
        sources=sources,
        sectors=SECTORS,
        reasons=EXIT_REASONS,
        today=local_today(person, now()).isoformat(),
    )


@bp.post(f"/participants/{ID}/referral")
@login_required
def referral(participant_id: int) -> WerkzeugResponse:
    form = request.form
    with participant_unit_or_404(participant_id) as (db, person):
        today = local_today(person, now())
        try:
            referred, source = clean_referral(
                form.get("referral_date", ""), form.get("referral_source", ""), settings_for(db, person)
            )
            started = date.fromisoformat(form["support_start"]) if form.get("support_start") else None
        except (ReferralError, ValueError) as exc:
            problem = str(exc) if isinstance(exc, ReferralError) else "Support start: a date like 2026-11-30."
            return _back(participant_id, problem, "error")
        problems = journey_date_problems(referred, started or person.support_started_on, today=today)
        if problems:
            said = "; ".join(f"{field.replace('_', ' ').capitalize()}: {reason}" for field, reason in problems)
            return _back(participant_id, said + ".", "error")
        person.referral_date, person.referral_source, person.updated_at = referred, source, now()
        db.add(person)
        if started is not None and started != person.support_started_on:
            start_support(db, person, started, now())
        audit(db, me(), "referral", now(), participant_id=participant_id, source=source, support_start=str(started))
    return _back(participant_id, "Referral details saved.")


@bp.post(f"/participants/{ID}/job-start")
@login_required
def job_start(participant_id: int) -> WerkzeugResponse:
    form = request.form
    try:
        started_on = date.fromisoformat(form.get("started_on", ""))
        hours = float(form.get("hours_per_week", "").strip())
    except ValueError:
        return _back(participant_id, "Give the start date (like 2026-11-30) and the hours a week as a number.", "error")
    with participant_unit_or_404(participant_id) as (db, person):
        try:
            job = record_job_start(
                db,
                person,
                started_on=started_on,
                hours=hours,
                employer=form.get("employer", ""),
                sector=form.get("sector", ""),
                by=me().email,
                now=now(),
            )
        except JobStartError as exc:
            return _back(participant_id, f"Job start not saved: {exc}.", "error")
        audit(db, me(), "job_start", now(), participant_id=participant_id, hours=hours, sector=job.sector)
        ended = support_ended(person, now())  # the rule that kept the work texts from being planned
    if ended:
        return _back(participant_id, "Job start recorded. Support has ended, so no texts are planned about it.")
    return _back(participant_id, "Job start recorded. Texts now come after working hours, weekly for the first weeks.")


@bp.post(f"/participants/{ID}/exit")
@login_required
def exit_support(participant_id: int) -> WerkzeugResponse:
    form = request.form
    try:
        ends_on = date.fromisoformat(form.get("ends_on", ""))
    except ValueError:
        return _back(participant_id, "Give the date support ended, like 2026-11-30.", "error")
    goodbye = form.get("goodbye") == "yes"
    sent_id = None
    with participant_unit_or_404(participant_id) as (db, person):
        try:
            end_support(db, person, reason=form.get("reason", ""), ends_on=ends_on, by=me().email, now=now())
        except ExitError as exc:
            return _back(participant_id, f"Exit not recorded: {exc}.", "error")
        if goodbye:
            sent_id = send_goodbye(db, rt(), person, now())
        audit(db, me(), "exit", now(), participant_id=participant_id, reason=person.exit_reason, goodbye=goodbye)
    if sent_id is not None:
        current_app.extensions["assistant.sending.dispatch"].kick([sent_id])
    goodbye_note = ""
    if goodbye:
        goodbye_note = (
            " The goodbye text is on its way."
            if sent_id
            else " No goodbye text was sent: they cannot be texted (opted out, unreachable or no consent to texts)."
        )
    return _back(participant_id, "Support ended. Automated texts have stopped." + goodbye_note)
