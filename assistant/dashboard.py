"""The specialist's dashboard: caseload, flags, a participant's record, team and service views."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user
from sqlmodel import Session, col, func, select
from werkzeug.wrappers import Response as WerkzeugResponse

from assistant import engine
from assistant.auth import PasswordRuleError, authenticate, hash_password, reset_token, user_for_reset
from assistant.care import signins
from assistant.care.access import scoped, specialists_in_reach, transfer_targets, visible_participant
from assistant.care.audit import audit
from assistant.care.flags import acknowledge, resolve
from assistant.care.measures import measures_for_export, participant_trajectory
from assistant.contact import appointments as appts
from assistant.contact.checkins import plan_checkin
from assistant.content.wording import lock_screen_words, pressure_phrases
from assistant.db.models import (
    Appointment,
    AuditLog,
    Flag,
    Notification,
    Participant,
    Service,
    SignIn,
    Specialist,
    User,
)
from assistant.db.service_settings import ServiceSettings, duty_contact_problem, for_service
from assistant.db.units import lock_participant, transaction
from assistant.imports.appointments import apply_change, parse_local
from assistant.limits import SIGN_IN, limiter
from assistant.outbox.writer import queue_text
from assistant.reporting.export import export_participant
from assistant.reporting.formats import ATTRIBUTION, cell
from assistant.runtime import Runtime
from assistant.timing import DAYS, parse_hhmm
from assistant.views_data import (
    SORTS,
    ago,
    answers,
    caseload_query,
    caseload_rows,
    chart,
    thread,
    trajectories,
    unacknowledged_urgent,
)
from assistant.web.window_form import participant_windows

bp = Blueprint("dashboard", __name__)
login_manager = LoginManager()
login_manager.login_view = "dashboard.login"
login_manager.login_message = "Sign in to see this page."
login_manager.session_protection = "strong"

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
PAGE = 200
FLAGS_PAGE = 50  # each open flag is a card with its own forms


class SignedIn(UserMixin):  # type: ignore[misc]
    """The user behind one open sign-in; Flask-Login keeps only the sign-in's token in the cookie."""

    def __init__(self, user: User, token: str, sign_in_id: int | None) -> None:
        self.user = user
        self.token = token
        self.sign_in_id = sign_in_id

    def get_id(self) -> str:
        return self.token


def rt() -> Runtime:
    runtime: Runtime = current_app.extensions["assistant"]
    return runtime


def now() -> datetime:
    return rt().clock.now()


def me() -> User:
    user: User = current_user.user
    return user


def idle_limit() -> timedelta:
    return timedelta(minutes=rt().settings.session_idle_minutes)


@login_manager.user_loader
def load_user(token: str) -> SignedIn | None:
    # Only through an open sign-in row: logout, a new password, a new role, deactivation, 8 hours
    # from sign-in or the idle limit each end it, and then the cookie opens nothing.
    with transaction(rt().engine) as db:
        found = signins.resume(db, token, now(), idle_limit())
    if found is None:
        return None
    sign_in, user = found
    return SignedIn(user, token, sign_in.id)


@contextmanager
def unit() -> Iterator[Session]:
    with transaction(rt().engine) as db:
        yield db


def roles(*allowed: str) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if me().role not in allowed:
                abort(404)  # not 403: do not confirm the page exists for this role
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


@bp.app_template_filter("local")
def local_time(value: datetime | None, fmt: str = "%a %d %b %Y %H:%M") -> str:
    if value is None:
        return "-"
    return value.astimezone(ZoneInfo(rt().settings.default_timezone)).strftime(fmt)


@bp.app_context_processor
def helpers() -> dict[str, Any]:
    return {"ago": lambda then: ago(then, now()), "days": [d.capitalize() for d in DAYS]}


# --- signing in -------------------------------------------------------------------------------


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
            return redirect(target if safe_target(target) else url_for(".caseload"))
        return render_template("login.html", error=problem, email=email), 401
    return render_template("login.html", error=None, email="")


@bp.post("/logout")
@login_required
def logout() -> WerkzeugResponse:
    with unit() as db:
        if (sign_in := _current_sign_in(db)) is not None:
            signins.end(db, sign_in, "logout", now())
    logout_user()
    session.clear()
    return redirect(url_for(".login"))


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
            return redirect(url_for(".login"))
    return render_template("reset_password.html", invalid=False, error=None)


# --- sessions ----------------------------------------------------------------------------------


def _current_sign_in(db: Session) -> SignIn | None:
    return db.exec(select(SignIn).where(SignIn.token_hash == signins.token_hash(current_user.token))).first()


@bp.get("/sessions")
@login_required
def sessions_page() -> str:
    user = me()
    assert user.id is not None
    with unit() as db:
        current = _current_sign_in(db)
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
        return redirect(url_for(".login"))
    flash("That session has ended.")
    return redirect(url_for(".sessions_page"))


@bp.post("/sessions/end-others")
@login_required
def sessions_end_others() -> WerkzeugResponse:
    user = me()
    assert user.id is not None
    with unit() as db:
        current = _current_sign_in(db)
        count = signins.end_all(db, user.id, "ended", now(), keep=current.id if current else None)
        if count:
            audit(db, user, "session_end_others", now(), account=user.email, count=count)
    flash("Your other sessions have ended." if count else "You had no other sessions.")
    return redirect(url_for(".sessions_page"))


# --- caseload and flags ------------------------------------------------------------------------


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
            from assistant.reporting.caseload_caps import caseload_against_cap

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


@bp.get("/flags")
@login_required
def flags() -> str:
    """Open flags in reach, urgent first then oldest first, a page at a time."""
    page = min(max(1, request.args.get("page", 1, type=int) or 1), 100_000)
    severity = sa.case({"urgent": 0, "action": 1}, value=col(Flag.severity), else_=2)
    with unit() as db:
        reach = scoped(select(Participant.id), me())
        open_in_reach = select(Flag).where(col(Flag.participant_id).in_(reach), Flag.status != "resolved")
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
    return render_template(
        "flags.html", flags=rows, people=people, page=page, pages=pages, total=total, per_page=FLAGS_PAGE
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
    return redirect(_back(url_for(".flags")))


@bp.post("/flags/<int(max=2147483647):flag_id>/resolve")
@login_required
def flag_resolve(flag_id: int) -> Any:
    with unit() as db:
        flag = _flag_in_reach(db, flag_id)
        try:
            resolve(db, flag, by=me().email, note=request.form.get("note", "")[:2000], now=now())
        except ValueError as exc:
            flash(str(exc), "error")
            return redirect(url_for(".participant", participant_id=flag.participant_id)), 303
        audit(db, me(), "flag_resolve", now(), participant_id=flag.participant_id, flag=flag.id)
    flash("Flag resolved.")
    return redirect(_back(url_for(".flags")))


def safe_target(target: str | None) -> bool:
    """A path on this site: no scheme or host, no control characters, whitespace or backslashes."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 or c == "\\" for c in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def _back(default: str) -> str:
    """Where a form asked to go back to, only if it is a page on this site."""
    target = request.form.get("back", "")
    return target if safe_target(target) else default


# --- a participant's record --------------------------------------------------------------------


def _participant_or_404(db: Session, participant_id: int) -> Participant:
    participant = visible_participant(db, me(), participant_id)
    if participant is None:
        abort(404)
    return participant


@bp.get("/participants/<int(max=2147483647):participant_id>")
@login_required
def participant(participant_id: int) -> str:
    with unit() as db:
        person = _participant_or_404(db, participant_id)
        audit(db, me(), "view_record", now(), participant_id=person.id)
        specialist = db.get(Specialist, person.specialist_id)
        data = {
            "p": person,
            "specialist": specialist,
            "messages": thread(db, participant_id),
            "answers": answers(db, participant_id)[:50],
            "appointments": db.exec(
                select(Appointment)
                .where(Appointment.participant_id == participant_id)
                .order_by(col(Appointment.starts_at).desc())
            ).all(),
            "flags": db.exec(
                select(Flag)
                .where(Flag.participant_id == participant_id)
                .order_by(col(Flag.status) != "open", col(Flag.id).desc())
            ).all(),
            "chart": chart(db, participant_id),
            "trajectory": participant_trajectory(db, participant_id),
            "measures": measures_for_export(db, participant_id),
            "attribution": ATTRIBUTION,
            "specialists": transfer_targets(db, me(), person),
            "kinds": appts.KINDS,
            "outcomes": appts.OUTCOMES,
        }
    return render_template("participant.html", **data)


@bp.post("/participants/<int(max=2147483647):participant_id>/pause")
@login_required
def pause(participant_id: int) -> WerkzeugResponse:
    with unit() as db:
        person = _participant_or_404(db, participant_id)
        lock_participant(db, participant_id)
        person.paused = True
        db.add(person)
        audit(db, me(), "pause", now(), participant_id=participant_id)
    flash("Automated texts are paused. Nothing scheduled will go until you resume.")
    return redirect(url_for(".participant", participant_id=participant_id))


@bp.post("/participants/<int(max=2147483647):participant_id>/resume")
@login_required
def resume(participant_id: int) -> WerkzeugResponse:
    with unit() as db:
        person = _participant_or_404(db, participant_id)
        lock_participant(db, participant_id)
        person.paused = False
        db.add(person)
        plan_checkin(db, person, now())  # the next check-in from today, not a backlog
        audit(db, me(), "resume", now(), participant_id=participant_id)
    flash("Automated texts resumed.")
    return redirect(url_for(".participant", participant_id=participant_id))


@bp.post("/participants/<int(max=2147483647):participant_id>/preferences")
@login_required
def preferences(participant_id: int) -> WerkzeugResponse:
    with unit() as db:
        _participant_or_404(db, participant_id)  # nothing about the form until we know they may see this record
    form = request.form
    errors = []
    day = form.get("checkin_day", "").lower()[:3]
    if day not in DAYS:
        errors.append("Choose a check-in day.")
    try:
        checkin_time = parse_hhmm(form.get("checkin_time", "")).strftime("%H:%M")
        allowed_from = parse_hhmm(form.get("allowed_from", "08:00")).strftime("%H:%M")
        allowed_until = parse_hhmm(form.get("allowed_until", "20:00")).strftime("%H:%M")
    except ValueError:
        errors.append("Give times as HH:MM, for example 10:30.")
        checkin_time = allowed_from = allowed_until = ""
    every = form.get("every_weeks", "1")
    if every not in ("1", "2", "4"):
        errors.append("Check in every 1, 2 or 4 weeks.")
    windows_text = None
    if not errors:
        windows_text, problem = participant_windows(
            allowed_from, allowed_until, form.get("second_window", ""), checkin_time
        )
        if problem:
            errors.append(problem)
    language = form.get("language", "en-GB")
    if language not in ("en-GB",):
        errors.append("Only English (en-GB) wording is available so far.")
    if errors:
        for error in errors:
            flash(error, "error")
        return redirect(url_for(".participant", participant_id=participant_id))
    with unit() as db:
        person = _participant_or_404(db, participant_id)
        lock_participant(db, participant_id)
        person.checkin_day, person.checkin_time, person.checkin_every_weeks = DAYS.index(day), checkin_time, int(every)
        person.allowed_from, person.allowed_until = allowed_from, allowed_until
        person.contact_windows = windows_text
        person.show_location = form.get("show_location") == "yes"
        person.language, person.updated_at = language, now()
        db.add(person)
        plan_checkin(db, person, now())
        audit(
            db,
            me(),
            "preferences",
            now(),
            participant_id=participant_id,
            day=day,
            time=checkin_time,
            every=every,
            allowed=windows_text or f"{allowed_from}-{allowed_until}",
        )
    flash("Contact preferences saved.")
    return redirect(url_for(".participant", participant_id=participant_id))


def _check_text(text: str) -> tuple[int, bool, list[str], list[str]]:
    return engine.segment_count(text), engine.is_gsm7(text), lock_screen_words(text), pressure_phrases(text)


@bp.post("/participants/<int(max=2147483647):participant_id>/message")
@login_required
def message(participant_id: int) -> Any:
    text = request.form.get("body", "").replace("\r\n", "\n").strip()
    with unit() as db:
        person = _participant_or_404(db, participant_id)
    if not text or len(text) > 1600 or any(ord(c) < 32 and c != "\n" for c in text):
        flash("Write a message of 1 to 1,600 characters.", "error")
        return redirect(url_for(".participant", participant_id=participant_id))
    segments, gsm, words, pressure = _check_text(text)
    if request.form.get("confirm") != "yes":
        return render_template(
            "message_preview.html", p=person, body=text, segments=segments, gsm=gsm, words=words, pressure=pressure
        )
    if person.opted_out or person.unreachable:
        flash("This participant cannot be texted (opted out or unreachable).", "error")
        return redirect(url_for(".participant", participant_id=participant_id))
    with unit() as db:
        locked = lock_participant(db, participant_id)
        assert locked is not None
        outgoing = queue_text(
            db, phone=locked.phone, body=text, key="staff/one_off", now=now(), participant_id=participant_id
        )
        audit(db, me(), "send_message", now(), participant_id=participant_id, segments=segments)
        message_id = outgoing.id
    assert message_id is not None
    current_app.extensions["assistant.sending.dispatch"].kick([message_id])
    flash("Message sent.")
    return redirect(url_for(".participant", participant_id=participant_id) + "#thread")


@bp.post("/participants/<int(max=2147483647):participant_id>/transfer")
@login_required
def transfer(participant_id: int) -> WerkzeugResponse:
    target = request.form.get("specialist_id", type=int)
    if target is not None and not 1 <= target <= 2147483647:
        target = None
    with unit() as db:
        person = _participant_or_404(db, participant_id)
        new_owner = next((s for s in transfer_targets(db, me(), person) if s.id == target), None)
        if new_owner is None:  # not theirs to choose (another team, another service) or nobody
            flash("Choose one of the specialists listed.", "error")
            return redirect(url_for(".participant", participant_id=participant_id))
        lock_participant(db, participant_id)
        before = person.specialist_id
        person.specialist_id = new_owner.id  # type: ignore[assignment]
        person.updated_at = now()
        db.add(person)
        for flag in db.exec(select(Flag).where(Flag.participant_id == participant_id, Flag.status != "resolved")).all():
            flag.specialist_id = new_owner.id  # type: ignore[assignment]
            db.add(flag)  # open flags go with the participant: never to someone who no longer owns them
        audit(
            db,
            me(),
            "transfer",
            now(),
            participant_id=participant_id,
            from_specialist=before,
            to_specialist=new_owner.id,
        )
    flash(f"Transferred to {new_owner.name or new_owner.email}. The history stays with the record.")
    if visible_participant_after(participant_id):
        return redirect(url_for(".participant", participant_id=participant_id))
    return redirect(url_for(".caseload"))


def visible_participant_after(participant_id: int) -> bool:
    with unit() as db:
        return visible_participant(db, me(), participant_id) is not None


@bp.get("/participants/<int(max=2147483647):participant_id>/export.json")
@login_required
def export(participant_id: int) -> Response:
    with unit() as db:
        person = _participant_or_404(db, participant_id)
        record = export_participant(db, person)
        audit(db, me(), "export_record", now(), participant_id=participant_id)
    response = Response(json.dumps(record, indent=2, ensure_ascii=False), mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="participant-{person.id}.json"'
    return response


# --- appointments ------------------------------------------------------------------------------


@bp.post("/participants/<int(max=2147483647):participant_id>/appointments")
@login_required
def appointment_add(participant_id: int) -> WerkzeugResponse:
    form = request.form
    with unit() as db:
        person = _participant_or_404(db, participant_id)
        try:
            starts_at = parse_local(form.get("starts_at", "").replace("T", " "), person.timezone)
        except ValueError as exc:
            flash(str(exc), "error")
            return redirect(url_for(".participant", participant_id=participant_id))
        kind = form.get("kind", "")
        duration = form.get("duration_minutes", "60")
        if kind not in appts.KINDS or not re.fullmatch(r"[0-9]{1,3}", duration) or not 5 <= int(duration) <= 480:
            flash("Choose a kind and a duration from 5 to 480 minutes.", "error")
            return redirect(url_for(".participant", participant_id=participant_id))
        if starts_at <= now():
            flash("That time has passed: record past appointments with their outcome.", "error")
            return redirect(url_for(".participant", participant_id=participant_id))
        lock_participant(db, participant_id)
        appointment = Appointment(
            participant_id=participant_id,
            external_id=f"D{uuid.uuid4().hex[:12]}",
            starts_at=starts_at,
            kind=kind,
            duration_minutes=int(duration),
            location=form.get("location", "")[:300],
            with_whom=form.get("with_whom", "")[:200],
            created_at=now(),
            updated_at=now(),
        )
        db.add(appointment)
        db.flush()
        apply_change(db, appointment, person, now(), moved=True, outcome_changed=False)
        audit(db, me(), "appointment_add", now(), participant_id=participant_id, appointment=appointment.id)
    flash("Appointment added; reminders are planned.")
    return redirect(url_for(".participant", participant_id=participant_id) + "#appointments")


def _appointment_or_404(db: Session, participant_id: int, appointment_id: int) -> tuple[Participant, Appointment]:
    person = _participant_or_404(db, participant_id)
    appointment = db.get(Appointment, appointment_id)
    if appointment is None or appointment.participant_id != participant_id:
        abort(404)
    return person, appointment


@bp.post("/participants/<int(max=2147483647):participant_id>/appointments/<int(max=2147483647):appointment_id>/move")
@login_required
def appointment_move(participant_id: int, appointment_id: int) -> WerkzeugResponse:
    with unit() as db:
        person, appointment = _appointment_or_404(db, participant_id, appointment_id)
        try:
            starts_at = parse_local(request.form.get("starts_at", "").replace("T", " "), person.timezone)
        except ValueError as exc:
            flash(str(exc), "error")
            return redirect(url_for(".participant", participant_id=participant_id))
        if starts_at <= now() or appointment.outcome is not None:
            flash("Only an upcoming appointment can move, to a time that has not passed.", "error")
            return redirect(url_for(".participant", participant_id=participant_id))
        lock_participant(db, participant_id)
        appointment.starts_at, appointment.updated_at = starts_at, now()
        appointment.version += 1
        db.add(appointment)
        db.flush()
        apply_change(db, appointment, person, now(), moved=True, outcome_changed=False)
        audit(db, me(), "appointment_move", now(), participant_id=participant_id, appointment=appointment_id)
    flash("Appointment moved; its reminders are re-planned.")
    return redirect(url_for(".participant", participant_id=participant_id) + "#appointments")


@bp.post("/participants/<int(max=2147483647):participant_id>/appointments/<int(max=2147483647):appointment_id>/outcome")
@login_required
def appointment_outcome(participant_id: int, appointment_id: int) -> WerkzeugResponse:
    outcome = request.form.get("outcome", "")
    with unit() as db:
        person, appointment = _appointment_or_404(db, participant_id, appointment_id)
        if outcome not in appts.OUTCOMES:
            flash("Choose an outcome.", "error")
            return redirect(url_for(".participant", participant_id=participant_id))
        if outcome in ("attended", "dna") and appointment.starts_at and appointment.starts_at > now():
            flash("An appointment can only be attended or missed once it has started.", "error")
            return redirect(url_for(".participant", participant_id=participant_id))
        lock_participant(db, participant_id)
        changed = appointment.outcome != outcome
        appointment.outcome, appointment.outcome_at, appointment.updated_at = outcome, now(), now()
        appointment.version += 1
        db.add(appointment)
        db.flush()
        if changed:
            apply_change(db, appointment, person, now(), moved=False, outcome_changed=True)
        audit(
            db,
            me(),
            "appointment_outcome",
            now(),
            participant_id=participant_id,
            appointment=appointment_id,
            outcome=outcome,
        )
    flash("Missed appointment recorded: the follow-up has started." if outcome == "dna" else "Outcome recorded.")
    return redirect(url_for(".participant", participant_id=participant_id) + "#appointments")


# --- team and service --------------------------------------------------------------------------


@bp.get("/team")
@login_required
@roles("team_lead", "service_admin")
def team() -> str:
    from assistant.reporting.caseload_caps import caseload_against_cap
    from assistant.reporting.contact_evidence import weekly_contact

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


@bp.get("/audit")
@login_required
@roles("service_admin")
def audit_log() -> Any:
    with unit() as db:
        rows = db.exec(
            select(AuditLog).where(AuditLog.service_id == me().service_id).order_by(col(AuditLog.id).desc()).limit(500)
        ).all()
    if request.args.get("format") == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["at", "user", "action", "participant", "detail"])
        for row in rows:
            writer.writerow(
                [
                    cell(v)
                    for v in (
                        row.at.isoformat() if row.at else "",
                        row.user_email,
                        row.action,
                        row.participant_id or "",
                        json.dumps(row.detail),
                    )
                ]
            )
        return Response(
            out.getvalue(), mimetype="text/csv", headers={"Content-Disposition": 'attachment; filename="audit.csv"'}
        )
    return render_template("audit.html", rows=rows)


# --- service settings and imports (service admins; team leads see imports read-only) ----------


def _field_label(name: str) -> str:
    from assistant.contact.settings_change import LABELS

    return LABELS.get(name, name)


def _plain(message: str) -> str:
    """A validation message in the page's words: field names become their labels."""
    from assistant.contact.settings_change import LABELS

    for name in sorted(LABELS, key=len, reverse=True):
        message = message.replace(name, f"'{LABELS[name]}'")
    return message[:1].upper() + message[1:]


def _settings_form(current: ServiceSettings) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """Changed values, parse errors per field, and the text as typed (to show again)."""
    from assistant.contact.settings_change import CHOICES, KINDS, parse_value
    from assistant.db.service_settings import RULES

    form = request.form
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    typed: dict[str, str] = {}
    for name, kind in KINDS.items():
        if name == "rules_off":
            on = set(form.getlist("rules_on"))
            value: Any = tuple(rule for rule in RULES if rule not in on)
        elif name == "questionnaire_instruments":
            chosen = set(form.getlist(name))
            value = tuple(key for key, _ in CHOICES[name] if key in chosen)
        elif kind == "bool":
            value = form.get(name) == "yes"
        else:
            typed[name] = form.get(name, "")[:300]
            try:
                value = parse_value(name, typed[name])
            except ValueError as exc:
                errors[name] = _plain(f"{name}: {exc}")
                continue
        if value != getattr(current, name):
            values[name] = value
    return values, errors, typed


def _field_errors(found: dict[str, str]) -> dict[str, str]:
    return {k: _plain(v if k in v else f"{k}: {v}") for k, v in found.items()}


@bp.route("/settings", methods=["GET", "POST"])
@login_required
@roles("service_admin")
def settings_page() -> Any:
    from assistant.contact.settings_change import CHOICES, GROUPS, SettingsError, change_settings, check

    errors: dict[str, str] = {}
    typed: dict[str, str] = {}
    with unit() as db:
        service = db.get(Service, me().service_id)
        if service is None:
            abort(404)
        current = ServiceSettings.from_json(service.settings)
        shown = current
        if request.method == "POST":
            values, errors, typed = _settings_form(current)
            if errors:  # the fields that did parse are checked too, so every mistake shows at once
                try:
                    check(current, values)
                except SettingsError as exc:
                    errors |= _field_errors(exc.errors)
            else:
                try:
                    changed = change_settings(db, service, values, by=me().email, now=now())
                except SettingsError as exc:
                    errors = _field_errors(exc.errors)
                else:
                    if changed:
                        flash(
                            "Settings saved: "
                            + "; ".join(
                                # The form lists rules that are on; the setting holds those turned off.
                                f"{'Rules turned off' if k == 'rules_off' else _field_label(k)} "
                                f"{_show(old)} to {_show(new)}"
                                for k, (old, new) in changed.items()
                            )
                            + "."
                        )
                    else:
                        flash("Nothing changed.")
                    return redirect(url_for(".settings_page"))
            # Show the page as the admin filled it in, with each problem beside its field.
            try:
                shown = replace_settings(current, values)
            except (TypeError, ValueError):
                shown = current
        text = {name: _show(value) for name, value in shown.to_json().items()} | typed
        missing = duty_contact_problem(current)
    page = render_template(
        "settings.html",
        groups=GROUPS,
        choices=CHOICES,
        settings=shown,
        text=text,
        errors=errors,
        missing=_plain(missing) if missing else None,
    )
    return page, (400 if errors else 200)


def replace_settings(current: ServiceSettings, values: dict[str, Any]) -> ServiceSettings:
    from dataclasses import replace

    return replace(current, **values)


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value) if value != "" else "none"


@bp.route("/imports", methods=["GET", "POST"])
@login_required
@roles("team_lead", "service_admin")
def imports_page() -> Any:
    from assistant.imports.runs import recent_runs, run_import

    status = 200
    if request.method == "POST":
        if me().role != "service_admin":
            abort(404)  # team leads see the list; only admins upload
        kind = request.form.get("kind", "")
        upload = request.files.get("file")
        if kind not in ("caseload", "appointments") or upload is None or not upload.filename:
            flash("Choose what kind of file it is and a CSV file to upload.", "error")
            status = 400
        else:
            data = upload.read(MAX_UPLOAD + 1)
            with unit() as db:
                service = db.get(Service, me().service_id)
            assert service is not None
            outcome = run_import(
                rt(),
                kind,
                data,
                file_name=upload.filename,
                by=me().email,
                via="dashboard",
                now=now(),
                service=service,
            )
            with unit() as db:
                audit(db, me(), "import", now(), kind=kind, run=outcome.run.id, outcome=outcome.run.outcome)
            if outcome.report is not None:
                flash(
                    f"Imported {outcome.run.file_name}: {outcome.run.created} created, "
                    f"{outcome.run.updated} updated, {outcome.run.unchanged} unchanged."
                )
            else:
                flash(
                    f"{outcome.run.file_name} was not imported: nothing was changed. "
                    f"{len(outcome.errors)} problem{'' if len(outcome.errors) == 1 else 's'} to fix.",
                    "error",
                )
            return redirect(url_for(".import_page", run_id=outcome.run.id), 303)
    with unit() as db:
        runs = recent_runs(db, me().service_id)
    return render_template("imports.html", runs=runs, max_mb=MAX_UPLOAD // (1024 * 1024)), status


MAX_UPLOAD = 5 * 1024 * 1024  # the importers' own limit


def _in_my_service_or_404(db: Session, model: type[T], row_id: int) -> T:
    """A service-wide row (an import, a campaign) of the signed-in user's own service."""
    row = db.get(model, row_id)
    if row is None or getattr(row, "service_id", None) != me().service_id:
        abort(404)  # another service's row does not exist, as far as this user can tell
    return row


def _run_or_404(db: Session, run_id: int) -> Any:
    from assistant.db.models import ImportRun

    return _in_my_service_or_404(db, ImportRun, run_id)


@bp.get("/imports/<int(max=2147483647):run_id>")
@login_required
@roles("team_lead", "service_admin")
def import_page(run_id: int) -> str:
    with unit() as db:
        run = _run_or_404(db, run_id)
    # The errors quote the file's rows, which may be anyone in the service: admins only.
    return render_template("import.html", run=run, show_errors=me().role == "service_admin")


@bp.get("/imports/<int(max=2147483647):run_id>/errors.csv")
@login_required
@roles("service_admin")
def import_errors_csv(run_id: int) -> Response:
    with unit() as db:
        run = _run_or_404(db, run_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["line", "column", "problem"])
    for error in run.errors:
        line, column, problem = _split_error(error)
        writer.writerow([cell(line), cell(column), cell(problem)])
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="import-{run.id}-errors.csv"'},
    )


ERROR_AT = re.compile(r"line (\d+)(?:, column ([^:]+))?: (.*)", re.DOTALL)


def _split_error(error: str) -> tuple[str, str, str]:
    """'line 3, column phone: reason' as its parts; other problems are about the whole file."""
    match = ERROR_AT.fullmatch(error)
    if match is None:
        return "", "", error
    return match.group(1), match.group(2) or "", match.group(3)


@bp.app_template_filter("error_parts")
def error_parts(error: str) -> tuple[str, str, str]:
    return _split_error(error)


def init_app(app: Any) -> None:
    login_manager.init_app(app)
    app.register_blueprint(bp)


# --- campaigns (service admins) ----------------------------------------------------------------


def _campaign_form() -> tuple[dict[str, Any], dict[str, Any]]:
    form = request.form
    audience = {k: form.get(f"audience_{k}", "").strip() for k in ("cohort", "specialist", "tag")}
    audience = {k: v for k, v in audience.items() if v}
    values: dict[str, Any] = {
        "name": form.get("name", "")[:200],
        "text": form.get("text", "")[:1600],
        "reply_keyword": form.get("reply_keyword", "").strip() or None,
    }
    when = form.get("send_at", "").strip()
    values["send_at_text"] = when
    return values, audience


@bp.route("/campaigns", methods=["GET", "POST"])
@login_required
@roles("service_admin")
def campaigns_page() -> Any:
    from assistant.contact import campaigns as camp
    from assistant.db.models import Campaign

    values, audience = _campaign_form() if request.method == "POST" else ({}, {})
    preview = error = None
    with unit() as db:
        if request.method == "POST":
            try:
                send_at = (
                    parse_local(values["send_at_text"].replace("T", " "), rt().settings.default_timezone)
                    if values["send_at_text"]
                    else None
                )
                if request.form.get("action") == "template":
                    # Fill the message box with a ready-made text to edit; nothing is checked or queued yet.
                    values["text"] = camp.template_text(rt().settings.messages_dir, request.form.get("template", ""))
                    values["template"] = request.form.get("template", "")
                elif request.form.get("action") == "create":
                    campaign = camp.create(
                        db,
                        service_id=me().service_id,
                        name=values["name"],
                        text=values["text"],
                        audience=audience,
                        created_by=me().email,
                        now=now(),
                        send_at=send_at,
                        reply_keyword=values["reply_keyword"],
                        flows=rt().flows,
                    )
                    audit(db, me(), "campaign_create", now(), campaign=campaign.id)
                    flash(f"Campaign '{campaign.name}' scheduled.")
                    return redirect(url_for(".campaign_page", campaign_id=campaign.id))
                else:
                    limit = for_service(db, me().service_id).campaign_segment_limit
                    problems = camp.check_text(values["text"], limit)
                    text = values["text"] if not problems else ""
                    preview = camp.preview(db, me().service_id, text, audience, now())
                    error = "; ".join(problems) or None
            except (camp.CampaignError, ValueError) as exc:
                error = str(exc)
        rows = db.exec(
            select(Campaign).where(Campaign.service_id == me().service_id).order_by(col(Campaign.id).desc())
        ).all()
    status = 400 if error else 200
    return render_template(
        "campaigns.html",
        campaigns=rows,
        preview=preview,
        error=error,
        values=values,
        audience=audience,
        templates=camp.templates(rt().settings.messages_dir),
    ), status


def _campaign_or_404(db: Session, campaign_id: int) -> Any:
    from assistant.db.models import Campaign

    return _in_my_service_or_404(db, Campaign, campaign_id)


@bp.post("/campaigns/<int(max=2147483647):campaign_id>/status")
@login_required
@roles("service_admin")
def campaign_status(campaign_id: int) -> WerkzeugResponse:
    from assistant.contact import campaigns as camp

    with unit() as db:
        campaign = _campaign_or_404(db, campaign_id)
        try:
            camp.set_status(db, campaign, request.form.get("status", ""), now())
            audit(db, me(), "campaign_status", now(), campaign=campaign_id, status=request.form.get("status"))
            flash(f"Campaign {campaign.status}.")
        except camp.CampaignError as exc:
            flash(str(exc), "error")
    return redirect(url_for(".campaign_page", campaign_id=campaign_id))


SHOWN_PER_STATE = 50  # names listed per progress state; the rest are counted


@bp.get("/campaigns/<int(max=2147483647):campaign_id>")
@login_required
@roles("service_admin")
def campaign_page(campaign_id: int) -> str:
    from assistant.contact import campaigns as camp

    with unit() as db:
        campaign = _campaign_or_404(db, campaign_id)
        report = camp.progress(db, campaign)
        shown = {pid for ids in report["participants"].values() for pid in ids[:SHOWN_PER_STATE]}
        people = {p.id: p for p in db.exec(select(Participant).where(col(Participant.id).in_(shown))).all()}
    return render_template(
        "campaign.html", campaign=campaign, report=report, people=people, shown_per_state=SHOWN_PER_STATE
    )
