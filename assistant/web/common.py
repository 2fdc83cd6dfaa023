"""What every dashboard page shares: the signed-in user, the clock, units of work, role checks, safe redirects."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import abort, current_app, request
from flask_login import LoginManager, UserMixin, current_user, login_required
from sqlmodel import Session, select

from assistant.care import signins
from assistant.care.access import visible_participant
from assistant.db.models import Participant, SignIn, User
from assistant.db.units import participant_unit, transaction
from assistant.runtime import Runtime

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Sign in to see this page."
login_manager.session_protection = "strong"

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


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


@contextmanager
def participant_unit_or_404(participant_id: int) -> Iterator[tuple[Session, Participant]]:
    """A unit of work about one participant the signed-in user may see, their lock taken first as
    everywhere (`participant_unit`); anyone else's record answers 404."""
    with participant_unit(rt().engine, participant_id) as (db, _locked):
        yield db, participant_or_404(db, participant_id)


def roles(*allowed: str) -> Callable[[F], F]:
    """A page for signed-in users with one of these roles (`login_required` first, as for every page)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if me().role not in allowed:
                abort(404)  # not 403: do not confirm the page exists for this role
            return view(*args, **kwargs)

        return login_required(wrapper)  # type: ignore[no-any-return]

    return decorate


def current_sign_in(db: Session) -> SignIn | None:
    return db.exec(select(SignIn).where(SignIn.token_hash == signins.token_hash(current_user.token))).first()


def safe_target(target: str | None) -> bool:
    """A path on this site: no scheme or host, no control characters, whitespace or backslashes."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 or c == "\\" for c in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def back(default: str) -> str:
    """Where a form asked to go back to, only if it is a page on this site."""
    target = request.form.get("back", "")
    return target if safe_target(target) else default


def participant_or_404(db: Session, participant_id: int) -> Participant:
    participant = visible_participant(db, me(), participant_id)
    if participant is None:
        abort(404)
    return participant


def in_my_service_or_404(db: Session, model: type[T], row_id: int) -> T:
    """A service-wide row (an import, a campaign) of the signed-in user's own service."""
    row = db.get(model, row_id)
    if row is None or getattr(row, "service_id", None) != me().service_id:
        abort(404)  # another service's row does not exist, as far as this user can tell
    return row
