"""The private questionnaire page: /q/<token>, no sign-in, one item at a time.

Every answer is its own unit of work under the participant's lock, bound to the item it answers
(an answer to any other item, from a second tab or the back button, is not saved). A token that
is unknown, used up, expired or altered gets the same page, which says nothing about anyone.
Posts carry the app's CSRF token; requests are rate-limited per address like sign-in.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, redirect, render_template, request

from assistant.contact import questionnaire_links as links
from assistant.content.library import with_capital_signature
from assistant.db.units import queued, transaction
from assistant.engine import PAUSED_FOR_SAFETY
from assistant.limits import limiter
from assistant.outbox.writer import participant_vars
from assistant.runtime import Runtime

bp = Blueprint("questionnaire_page", __name__)
# Per address, like sign-in: far more than a person answering (two requests an item), far less
# than a script trying tokens (which are 256 random bits in any case).
PAGE_LIMIT = "60 per minute"
_limit = limiter.shared_limit(PAGE_LIMIT, scope="questionnaire_page")  # one count for showing and answering
CHOOSE = "Choose an answer, or skip this question"


def _rt() -> Runtime:
    rt: Runtime = current_app.extensions["assistant"]
    return rt


@bp.after_request
def private(response: Response) -> Response:
    """Nothing on these pages may be cached or indexed (the app's Referrer-Policy keeps the address
    from other sites, and the page itself asks for no referrer at all)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _gone() -> tuple[str, int]:
    return render_template("questionnaire_gone.html"), 404


@bp.get(f"{links.PATH}<token>")
@_limit
def show(token: str) -> Any:
    rt = _rt()
    with transaction(rt.engine) as db:
        found = links.find(db, token, rt.clock.now())
        if found is None:
            return _gone()
        item = links.current_item(rt, found.row)
    return render_template("questionnaire_item.html", item=item, error=None)


@bp.post(f"{links.PATH}<token>")
@_limit
def answer(token: str) -> Any:
    rt = _rt()
    now = rt.clock.now()
    value = links.SKIPPED if request.form.get("skip") else request.form.get("answer", "")
    with transaction(rt.engine) as db:
        found = links.find(db, token, now, lock=True)
        if found is None:
            return _gone()
        item = links.current_item(rt, found.row)
        if request.form.get("question") != item.question:
            return redirect(request.path, 303)  # an answer to another item: show the one waiting
        if value != links.SKIPPED and value not in dict(item.options):
            return render_template("questionnaire_item.html", item=item, error=CHOOSE), 400
        done = links.answer(db, rt, found, value, now)
        outbox = done.outcome.outbox + queued(db).texts
        emails = queued(db).emails
        page = None
        if done.ended is not None:
            help_text = links.signposting(db, rt, found.participant) if done.crisis else None
            specialist = participant_vars(db, found.participant)["specialist_name"]
            page = render_template(
                "questionnaire_end.html",
                help=help_text,
                paused=done.ended == PAUSED_FOR_SAFETY,
                specialist_name=with_capital_signature(specialist),
            )
    # Signposting and the urgent flag's notices leave now, as they do for a text.
    current_app.extensions["assistant.sending.dispatch"].kick(outbox, emails=emails)
    return page if page is not None else redirect(request.path, 303)
