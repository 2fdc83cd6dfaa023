"""The sessions page: a user's open sign-ins, and (service admins) their staff's."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, session, url_for
from flask_login import current_user, login_required, logout_user
from sqlmodel import select
from werkzeug.wrappers import Response as WerkzeugResponse

from assistant.care import signins
from assistant.care.audit import audit
from assistant.db.models import (
    SignIn,
    User,
)
from assistant.web.common import (
    current_sign_in,
    idle_limit,
    me,
    now,
    rt,
    unit,
)

bp = Blueprint("sessions", __name__)


@bp.get("/sessions")
@login_required
def sessions_page() -> str:
    user = me()
    assert user.id is not None
    with unit() as db:
        current = current_sign_in(db)
        mine = signins.open_for(db, [user.id], now(), idle_limit())
        others: list[tuple[User, SignIn]] = []
        if user.role == "service_admin":
            staff = {
                u.id: u
                for u in db.exec(select(User).where(User.service_id == user.service_id, User.id != user.id)).all()
            }
            rows = signins.open_for(db, [i for i in staff if i is not None], now(), idle_limit())
            others = [(staff[row.user_id], row) for row in rows]
    return render_template(
        "sessions.html",
        mine=mine,
        current_id=current.id if current else None,
        others=others,
        lifetime=signins.LIFETIME,
        idle_minutes=int(rt().settings.session_idle_minutes),
    )


@bp.post("/sessions/<int:sign_in_id>/end")
@login_required
def session_end(sign_in_id: int) -> WerkzeugResponse:
    user = me()
    with unit() as db:
        sign_in = db.get(SignIn, sign_in_id)
        owner = db.get(User, sign_in.user_id) if sign_in else None
        # Your own, or (service admins) anyone's whose account is in your service; otherwise not found.
        allowed = owner is not None and (
            owner.id == user.id or (user.role == "service_admin" and owner.service_id == user.service_id)
        )
        if sign_in is None or owner is None or not allowed:
            abort(404)
        if sign_in.ended_at is None:
            signins.end(db, sign_in, "ended", now())
            audit(db, user, "session_end", now(), account=owner.email, session=sign_in.id)
        ended_own = sign_in.token_hash == signins.token_hash(current_user.token)
    if ended_own:
        logout_user()
        session.clear()
        return redirect(url_for("auth.login"))
    flash("That session has ended.")
    return redirect(url_for("sessions.sessions_page"))


@bp.post("/sessions/end-others")
@login_required
def sessions_end_others() -> WerkzeugResponse:
    user = me()
    assert user.id is not None
    with unit() as db:
        current = current_sign_in(db)
        count = signins.end_all(db, user.id, "ended", now(), keep=current.id if current else None)
        if count:
            audit(db, user, "session_end_others", now(), account=user.email, count=count)
    flash("Your other sessions have ended." if count else "You had no other sessions.")
    return redirect(url_for("sessions.sessions_page"))
