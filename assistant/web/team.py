"""The team page: caseloads against the cap, weekly contact, late urgent flags, outcomes."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request
from sqlmodel import col, select

from assistant.care.access import scoped, specialists_in_reach
from assistant.db.models import (
    Participant,
)
from assistant.db.service_settings import for_service
from assistant.reporting.caseload_caps import caseload_against_cap
from assistant.reporting.contact_evidence import weekly_contact
from assistant.views_data import (
    trajectories,
    unacknowledged_urgent,
)
from assistant.web.common import (
    me,
    now,
    roles,
    rt,
    unit,
)

bp = Blueprint("team", __name__)


@bp.get("/team")
@roles("team_lead", "service_admin")
def team() -> str:
    user = me()
    tz = rt().settings.default_timezone
    week = request.args.get("week") or now().astimezone(ZoneInfo(tz)).date().isoformat()
    with unit() as db:
        settings = for_service(db, user.service_id)
        specialists = specialists_in_reach(db, user)
        caps = caseload_against_cap(
            db, specialists, settings.caseload_cap, now(), tz, scoped(select(Participant), user)
        )
        late = unacknowledged_urgent(db, [s.id for s in specialists if s.id], now(), settings.escalate_after_minutes)
        try:
            report = weekly_contact(db, week, tz, scoped(select(Participant), user))
        except ValueError:
            report = weekly_contact(
                db, now().astimezone(ZoneInfo(tz)).date().isoformat(), tz, scoped(select(Participant), user)
            )
        contact = {sid: report.tally(sid) for sid in report.specialist_ids()}
        # Combined PHQ-9 and GAD-7 outcomes on paired first and last sittings; recovery among those at caseness.
        combined = [
            r["combined"]
            for r in trajectories(db, scoped(select(Participant.id), user)).values()
            if r and r["combined"]
        ]
        outcomes = {
            "paired": len(combined),
            "at_caseness": sum(1 for r in combined if r["caseness_first"]),
            "recovered": sum(1 for r in combined if r["recovery"]),
            "reliably_improved": sum(1 for r in combined if r["reliable_improvement"]),
        }
        people = {
            p.id: p
            for p in db.exec(select(Participant).where(col(Participant.id).in_([f.participant_id for f in late]))).all()
        }
    return render_template(
        "team.html",
        caps=caps,
        cap=settings.caseload_cap,
        late=late,
        contact=contact,
        week=report.monday,
        outcomes=outcomes,
        people=people,
        settings=settings.to_json(),
    )
