"""The Unknown numbers page: texts from phone numbers on no caseload, for service admins and duty contacts.

One sending number serves the whole deployment, so a text from a number on no caseload belongs
to no service: everyone allowed here sees every such text, and links it within their own service.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlmodel import Session, col, func, select
from werkzeug.wrappers import Response as WerkzeugResponse

from assistant.care.audit import audit
from assistant.care.triage import (
    REVIEWED,
    UNLINKED,
    TriageError,
    crisis_ids,
    link_to_participant,
    mark_reviewed,
    may_triage,
    unknown_texts,
)
from assistant.db.models import Message
from assistant.db.units import queued
from assistant.web.common import me, now, safe_target, unit

bp = Blueprint("unknown_numbers", __name__)
PAGE = 50  # each text is a card with its own forms


def _allowed_or_404(db: Session) -> None:
    if not may_triage(db, me()):
        abort(404)  # as for other admin pages: do not confirm the page exists for this user


@bp.app_context_processor
def nav() -> dict[str, Any]:
    def shown() -> bool:
        """Whether the signed-in user gets the menu link (asked once per request, only if a page asks)."""
        if not current_user.is_authenticated:
            return False
        if "may_triage" not in g:
            with unit() as db:
                g.may_triage = may_triage(db, me())
        return bool(g.may_triage)

    return {"may_triage": shown}


def _back() -> str:
    target = request.form.get("back", "")
    return target if safe_target(target) else url_for(".page")


@bp.get("/unknown-numbers")
@login_required
def page() -> str:
    show = "reviewed" if request.args.get("show") == "reviewed" else ""
    page = min(max(1, request.args.get("page", 1, type=int) or 1), 100_000)
    with unit() as db:
        _allowed_or_404(db)
        query = unknown_texts(show_reviewed=bool(show))
        total = db.exec(select(func.count()).select_from(query.order_by(None).subquery())).one()
        pages = max(1, -(-total // PAGE))
        page = min(page, pages)
        texts = list(db.exec(query.offset((page - 1) * PAGE).limit(PAGE)).all())
        crisis = crisis_ids(db, texts)
        # How many texts linking would move: every unlinked text from that phone, shown or not.
        phones = {m.phone for m in texts}
        from_phone = dict(
            db.exec(
                select(Message.phone, func.count())
                .where(
                    Message.direction == "in",
                    col(Message.participant_id).is_(None),
                    col(Message.status).in_(UNLINKED),
                    col(Message.phone).in_(phones),
                )
                .group_by(col(Message.phone))
            ).all()
        )
    return render_template(
        "unknown_numbers.html",
        texts=texts,
        crisis=crisis,
        from_phone=from_phone,
        reviewed=REVIEWED,
        show=show,
        page=page,
        pages=pages,
        total=total,
        per_page=PAGE,
        back=request.full_path.rstrip("?"),
    )


@bp.post("/unknown-numbers/<int(max=2147483647):message_id>/link")
@login_required
def link(message_id: int) -> WerkzeugResponse:
    try:
        with unit() as db:
            _allowed_or_404(db)
            linked = link_to_participant(
                db,
                message_id=message_id,
                service_id=me().service_id,
                external_id=request.form.get("external_id", ""),
                now=now(),
            )
            audit(
                db,
                me(),
                "unknown_number_linked",
                now(),
                participant_id=linked.participant.id,
                message_ids=linked.message_ids,
                reads_like_crisis=linked.crisis_ids,
            )
            outbox, emails = list(queued(db).texts), queued(db).emails
    except TriageError as exc:
        flash(str(exc), "error")
        return redirect(_back(), 303)
    # The urgent flag's emails and the duty text go now, as for a crisis text that came in.
    current_app.extensions["assistant.sending.dispatch"].kick(outbox, emails=emails)
    count = len(linked.message_ids)
    person = linked.participant
    said = (
        f"{count} text{'' if count == 1 else 's'} from this number moved to {person.first_name} "
        f"({person.external_id})'s record. Their phone number is unchanged: update their number on the "
        "record if this is their new phone."
    )
    if linked.crisis_ids:
        said += " An urgent crisis flag is raised: their specialist and the duty contact are told now."
    flash(said)
    return redirect(_back(), 303)


@bp.post("/unknown-numbers/<int(max=2147483647):message_id>/review")
@login_required
def review(message_id: int) -> WerkzeugResponse:
    try:
        with unit() as db:
            _allowed_or_404(db)
            crisis = mark_reviewed(db, message_id=message_id)
            audit(db, me(), "unknown_number_reviewed", now(), message_ids=[message_id], reads_like_crisis=crisis)
    except TriageError as exc:
        flash(str(exc), "error")
        return redirect(_back(), 303)
    flash("Marked as reviewed. It is kept: choose 'Waiting and reviewed' to see it again.")
    return redirect(_back(), 303)
