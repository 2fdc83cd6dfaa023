"""Report pages: weekly contact evidence with caseloads against the cap, and outcomes; CSV for commissioners.

Everyone sees the people within their own reach (a specialist their caseload, a team lead their
team, a service admin the service), as everywhere on the dashboard. The CSV exports are for
team leads and service admins, and carry no personal data beyond participant ids.
"""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, flash, render_template, request
from flask_login import login_required
from sqlmodel import select

from assistant.care.access import scoped, specialists_in_reach
from assistant.care.audit import audit
from assistant.db.models import Participant
from assistant.db.service_settings import for_service
from assistant.reporting.caseload_caps import caseload_against_cap
from assistant.reporting.contact_evidence import WeeklyContact, weekly_contact
from assistant.reporting.formats import ATTRIBUTION, CADENCE_NOTE, SCALE_NAMES, contact_csv, outcomes_csv
from assistant.reporting.outcomes import OutcomesReport, outcomes_report
from assistant.web.common import me, now, roles, rt, unit

bp = Blueprint("reports", __name__)
OUTCOMES_DAYS = 91  # the default period: the last thirteen weeks


def _today() -> date:
    return now().astimezone(ZoneInfo(rt().settings.default_timezone)).date()


def _contact(week: str) -> WeeklyContact:
    with unit() as db:
        return weekly_contact(db, week, rt().settings.default_timezone, scoped(select(Participant), me()))


def _period() -> tuple[date, date]:
    try:
        end = date.fromisoformat(request.args.get("to") or _today().isoformat())
        start = date.fromisoformat(request.args.get("from") or (end - timedelta(days=OUTCOMES_DAYS)).isoformat())
    except ValueError:
        end = _today()
        start = end - timedelta(days=OUTCOMES_DAYS)
        flash("Dates are like 2026-11-23: showing the last thirteen weeks.", "error")
    return (start, end) if start <= end else (end, start)


def _outcomes(start: date, end: date) -> OutcomesReport:
    with unit() as db:
        return outcomes_report(db, start, end, rt().settings.default_timezone, scoped(select(Participant), me()))


def _csv(text: str, name: str) -> Response:
    return Response(text, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/reports/contact")
@login_required
def contact_page() -> str:
    week = request.args.get("week") or _today().isoformat()
    try:
        report = _contact(week)
    except ValueError as exc:
        flash(str(exc), "error")
        week = _today().isoformat()
        report = _contact(week)
    with unit() as db:
        cap = for_service(db, me().service_id).caseload_cap
        specialists = specialists_in_reach(db, me())
        caps = caseload_against_cap(
            db, specialists, cap, now(), rt().settings.default_timezone, scoped(select(Participant), me())
        )
    return render_template(
        "report_contact.html", report=report, week=report.monday.isoformat(), caps=caps, cap=cap, note=CADENCE_NOTE
    )


@bp.get("/reports/contact.csv")
@roles("team_lead", "service_admin")
def contact_export() -> Response:
    try:
        report = _contact(request.args.get("week") or _today().isoformat())
    except ValueError as exc:
        return Response(str(exc), status=400, mimetype="text/plain")
    with unit() as db:
        audit(db, me(), "export_contact_report", now(), week=report.monday.isoformat())
    return _csv(contact_csv(report), f"contact-{report.monday.isoformat()}.csv")


@bp.get("/reports/outcomes")
@login_required
def outcomes_page() -> str:
    start, end = _period()
    report = _outcomes(start, end)
    return render_template("report_outcomes.html", report=report, names=SCALE_NAMES, attribution=ATTRIBUTION)


@bp.get("/reports/outcomes.csv")
@roles("team_lead", "service_admin")
def outcomes_export() -> Response:
    start, end = _period()
    report = _outcomes(start, end)
    with unit() as db:
        audit(db, me(), "export_outcomes_report", now(), start=start.isoformat(), end=end.isoformat())
    return _csv(outcomes_csv(report), f"outcomes-{start.isoformat()}-{end.isoformat()}.csv")
