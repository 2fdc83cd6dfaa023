"""The caseload: the people in reach, sorted and filtered, a page at a time."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import login_required
from sqlmodel import func, select

from assistant.access import scoped
from assistant.models import (
    Participant,
)
from assistant.service_settings import for_service
from assistant.views_data import (
    SORTS,
    caseload_query,
    caseload_rows,
)
from assistant.web.common import (
    me,
    unit,
)

bp = Blueprint("caseload", __name__)
PAGE = 200


@bp.get("/")
@login_required
def caseload() -> str:
    user = me()
    sort = request.args.get("sort", "flags")
    show = request.args.get("show", "all")
    cohort = request.args.get("cohort", "")
    page = min(max(1, request.args.get("page", 1, type=int) or 1), 100_000)
    if sort not in SORTS:
        sort = "flags"
    with unit() as db:
        query = caseload_query(scoped(select(Participant), user), sort=sort, show=show, cohort=cohort)
        total = db.exec(select(func.count()).select_from(query.order_by(None).subquery())).one()
        pages = max(1, -(-total // PAGE))
        page = min(page, pages)
        people = list(db.exec(query.offset((page - 1) * PAGE).limit(PAGE)).all())
        rows = caseload_rows(db, people)
        settings = for_service(db, user.service_id)
        mine = (
            db.exec(
                select(func.count()).select_from(Participant).where(Participant.specialist_id == user.specialist_id)
            ).one()
            if user.specialist_id
            else None
        )
    return render_template(
        "caseload.html",
        rows=rows,
        sort=sort,
        show=show,
        cohort=cohort,
        page=page,
        pages=pages,
        total=total,
        per_page=PAGE,
        cap=settings.caseload_cap,
        mine=mine,
    )
