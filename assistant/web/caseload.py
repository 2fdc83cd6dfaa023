"""The caseload: the people in reach, sorted and filtered, a page at a time."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import login_required
from sqlmodel import func, select

from assistant.care.access import scoped
from assistant.db.models import (
    Participant,
    Specialist,
)
from assistant.db.service_settings import for_service
from assistant.reporting.caseload_caps import caseload_against_cap
from assistant.views_data import (
    SORTS,
    caseload_query,
    caseload_rows,
)
from assistant.web.common import (
    me,
    now,
    rt,
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
        cap: float = settings.caseload_cap
        mine = None
        own = db.get(Specialist, user.specialist_id) if user.specialist_id else None
        if own is not None:  # active participants against the cap scaled by their FTE
            [row] = caseload_against_cap(db, [own], cap, now(), rt().settings.default_timezone)  # type: ignore[arg-type]
            mine, cap = row.active, row.cap
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
        cap=cap,
        mine=mine,
    )
