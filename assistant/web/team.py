"""The team page: caseloads against the cap, weekly contact, late urgent flags, outcomes."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request
from flask_login import login_required
from sqlmodel import col, select

from assistant.access import scoped, specialists_in_reach
from assistant.models import (
    Participant,
    Service,
)
from assistant.service_settings import for_service
from assistant.views_data import (
    caseload_counts,
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
@login_required
@roles("team_lead", "service_admin")
def team() -> str:
    from assistant.reports import contact_report

    user = me()
    week = request.args.get("week") or now().astimezone(ZoneInfo(rt().settings.default_timezone)).strftime("%G-W%V")
    with unit() as db:
        service = db.get(Service, user.service_id)
        settings = for_service(db, user.service_id)
        specialists = specialists_in_reach(db, user)
        counts = caseload_counts(db, [s.id for s in specialists if s.id])
        late = unacknowledged_urgent(db, [s.id for s in specialists if s.id], now(), settings.escalate_after_minutes)
        try:
            contact = {
                r.email: r
                for r in contact_report(
                    db,
                    week,
                    rt().settings.default_timezone,
                    service.slug if service else None,
                    specialist_ids=[s.id for s in specialists if s.id],
                )
            }
        except ValueError:
            contact = {}
        outcomes = {"with_two_scores": 0, "recovered": 0, "reliably_improved": 0}
        # Rates among people with two or more scores, as the programmes report them.
        for result in trajectories(db, scoped(select(Participant.id), user)).values():
            if result:
                outcomes["with_two_scores"] += 1
                outcomes["recovered"] += int(result["recovery"])
                outcomes["reliably_improved"] += int(result["reliable_improvement"])
        people = {
            p.id: p
            for p in db.exec(select(Participant).where(col(Participant.id).in_([f.participant_id for f in late]))).all()
        }
    return render_template(
        "team.html",
        specialists=specialists,
        counts=counts,
        cap=settings.caseload_cap,
        late=late,
        contact=contact,
        week=week,
        outcomes=outcomes,
        people=people,
        settings=settings.to_json(),
    )
