"""Open flags in reach, and acknowledging and resolving them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlmodel import Session, col, func, select
from werkzeug.wrappers import Response as WerkzeugResponse

from assistant.care.access import scoped, visible_participant
from assistant.care.audit import audit
from assistant.care.flags import acknowledge, resolve
from assistant.db.models import (
    Flag,
    FlagStatus,
    Participant,
)
from assistant.web.common import (
    back,
    me,
    now,
    unit,
)
from assistant.web.flag_cards import flag_cards

bp = Blueprint("flags", __name__)
FLAGS_PAGE = 50  # each open flag is a card with its own forms


@bp.get("/flags")
@login_required
def flags() -> str:
    """Open flags in reach, urgent first then oldest first, a page at a time."""
    page = min(max(1, request.args.get("page", 1, type=int) or 1), 100_000)
    severity = sa.case({"urgent": 0, "action": 1}, value=col(Flag.severity), else_=2)
    with unit() as db:
        reach = scoped(select(Participant.id), me())
        open_in_reach = select(Flag).where(col(Flag.participant_id).in_(reach), Flag.status != FlagStatus.RESOLVED)
        total = db.exec(select(func.count()).select_from(open_in_reach.subquery())).one()
        pages = max(1, -(-total // FLAGS_PAGE))
        page = min(page, pages)
        rows = db.exec(
            open_in_reach.order_by(severity, col(Flag.created_at), col(Flag.id))
            .offset((page - 1) * FLAGS_PAGE)
            .limit(FLAGS_PAGE)
        ).all()
        flagged = {f.participant_id for f in rows}
        people = {p.id: p for p in db.exec(select(Participant).where(col(Participant.id).in_(flagged))).all()}
        cards = flag_cards(db, list(rows))
    return render_template(
        "flags.html", flags=rows, people=people, cards=cards, page=page, pages=pages, total=total, per_page=FLAGS_PAGE
    )


def _flag_in_reach(db: Session, flag_id: int) -> Flag:
    flag = db.get(Flag, flag_id)
    if flag is None or visible_participant(db, me(), flag.participant_id) is None:
        abort(404)
    return flag


@bp.post("/flags/<int(max=2147483647):flag_id>/acknowledge")
@login_required
def flag_acknowledge(flag_id: int) -> WerkzeugResponse:
    with unit() as db:
        flag = _flag_in_reach(db, flag_id)
        acknowledge(db, flag, by=me().email, note=request.form.get("note", "")[:2000] or None, now=now())
        audit(db, me(), "flag_acknowledge", now(), participant_id=flag.participant_id, flag=flag.id)
    flash("Flag acknowledged.")
    return redirect(back(url_for("flags.flags")))


@bp.post("/flags/<int(max=2147483647):flag_id>/resolve")
@login_required
def flag_resolve(flag_id: int) -> Any:
    with unit() as db:
        flag = _flag_in_reach(db, flag_id)
        try:
            resolve(db, flag, by=me().email, note=request.form.get("note", "")[:2000], now=now())
        except ValueError as exc:
            flash(str(exc), "error")  # back where they were, the flag still there to resolve
            return redirect(back(url_for("flags.flags"))), 303
        audit(db, me(), "flag_resolve", now(), participant_id=flag.participant_id, flag=flag.id)
    flash("Flag resolved.")
    return redirect(back(url_for("flags.flags")))
