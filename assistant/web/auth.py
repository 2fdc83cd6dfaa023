"""Signing in and out, and password resets."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import login_required, login_user, logout_user
from sqlmodel import select
from werkzeug.wrappers import Response as WerkzeugResponse

from assistant.auth import PasswordRuleError, authenticate, hash_password, reset_token, user_for_reset
from assistant.care import signins
from assistant.care.audit import audit
from assistant.db.models import (
    Notification,
    User,
)
from assistant.limits import SIGN_IN, limiter
from assistant.web.common import (
    SignedIn,
    current_sign_in,
    now,
    rt,
    safe_target,
    unit,
)

bp = Blueprint("auth", __name__)


TOO_MANY_SIGN_INS = "Too many sign-in attempts from here. Wait a few minutes and try again, or reset your password."


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(SIGN_IN, methods=["POST"])
def login() -> Any:
    if request.method == "POST":
        email = request.form.get("email", "")[:254]
        password = request.form.get("password", "")[:200]
        token = ""
        address = request.remote_addr or ""
        with unit() as db:
            if signins.too_many_failures(db, address, now()):
                # Shared by every worker: the database counts refused sign-ins from this address.
                return render_template("login.html", error=TOO_MANY_SIGN_INS, email=email), 429
            user, problem = authenticate(db, email, password, now())
            if user is None:
                signins.record_failure(db, address, now())
            else:
                audit(db, user, "sign_in", now())
                token = signins.start(
                    db,
                    user,
                    now(),
                    remote_addr=request.remote_addr or "",
                    user_agent=request.headers.get("User-Agent", ""),
                )
        if user is not None:
            session.clear()
            # A browser session cookie (not permanent), so Flask-Login's "strong" protection applies:
            # the cookie replayed from another address or browser is dropped. The server ends the
            # sign-in itself after 8 hours or when idle.
            session.permanent = False
            login_user(SignedIn(user, token, None))
            target = request.args.get("next", "")
            # Only ever go back to a page on this site.
            return redirect(target if safe_target(target) else url_for("caseload.caseload"))
        return render_template("login.html", error=problem, email=email), 401
    return render_template("login.html", error=None, email="")


@bp.post("/logout")
@login_required
def logout() -> WerkzeugResponse:
    with unit() as db:
        if (sign_in := current_sign_in(db)) is not None:
            signins.end(db, sign_in, "logout", now())
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/reset", methods=["GET", "POST"])
@limiter.limit(SIGN_IN, methods=["POST"])
def reset_request() -> Any:
    if request.method == "POST":
        email = request.form.get("email", "").strip().lower()[:254]
        with unit() as db:
            user = db.exec(select(User).where(User.email == email)).first()
            if user is not None and user.active:
                link = rt().settings.public_url.rstrip("/") + url_for(
                    ".reset_password", token=reset_token(rt().settings.secret_key, user)
                )
                db.add(
                    Notification(
                        to_email=user.email,
                        subject="Reset your participant assistant password",
                        body=f"Use this link within an hour to choose a new password:\n\n{link}\n\n"
                        "If you did not ask for this, you can ignore this email.",
                        next_attempt_at=now(),
                        created_at=now(),
                    )
                )
        current_app.extensions["assistant.sending.dispatch"].kick([], emails=True)
        # The same answer whether or not the email is known.
        return render_template("reset_request.html", sent=True)
    return render_template("reset_request.html", sent=False)


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> Any:
    with unit() as db:
        user = user_for_reset(db, rt().settings.secret_key, token)
        if user is None:
            return render_template("reset_password.html", invalid=True, error=None), 400
        if request.method == "POST":
            password = request.form.get("password", "")
            if password != request.form.get("confirm", ""):
                return render_template("reset_password.html", invalid=False, error="The passwords do not match."), 400
            try:
                hashed = hash_password(password)
            except PasswordRuleError as exc:
                return render_template("reset_password.html", invalid=False, error=str(exc)), 400
            # Every sign-in of the account ends with the old password, wherever it was.
            signins.change_password(db, user, hashed, now(), reason="password_reset")
            audit(db, user, "password_reset", now())
            flash("Your password has been changed. Sign in with it now.")
            return redirect(url_for("auth.login"))
    return render_template("reset_password.html", invalid=False, error=None)
