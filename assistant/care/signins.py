"""Dashboard sign-ins kept on the server: a row per signed-in browser, ended at logout, on a change
to the account, after 8 hours, or after a spell with no requests.

The session cookie holds only a random token (Flask-Login's alternative id); the row keeps its
SHA-256 hash, so a copy of the database cannot be turned back into working cookies.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from assistant.db.models import FailedSignIn, SignIn, User

LIFETIME = timedelta(hours=8)
# How long the record of a sign-in (with its address and browser) is kept: PRIVACY.md says so.
KEEP = timedelta(days=90)
# last_seen_at is written at most this often, so a page with many requests is not a write each.
SEEN_EVERY = timedelta(minutes=1)
REASONS = {
    "logout": "signed out",
    "ended": "ended from the sessions page",
    "expired": "8 hours after sign-in",
    "idle": "no activity",
    "password_reset": "password reset",
    "password_change": "password changed",
    "role_change": "role changed",
    "deactivated": "account deactivated",
}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(db: Session, user: User, now: datetime, *, remote_addr: str, user_agent: str) -> str:
    """A new sign-in for `user`; the returned token goes in the session cookie and nowhere else."""
    assert user.id is not None
    token = secrets.token_urlsafe(32)
    db.add(
        SignIn(
            token_hash=token_hash(token),
            user_id=user.id,
            service_id=user.service_id,
            role=user.role,
            created_at=now,
            last_seen_at=now,
            remote_addr=remote_addr[:64],
            user_agent=user_agent[:300],
        )
    )
    return token


def _problem(sign_in: SignIn, user: User | None, now: datetime, idle: timedelta) -> str | None:
    assert sign_in.created_at is not None and sign_in.last_seen_at is not None
    if user is None or not user.active:
        return "deactivated"
    if user.role != sign_in.role:
        return "role_change"
    if user.password_changed_at is not None and user.password_changed_at > sign_in.created_at:
        return "password_change"
    if now >= sign_in.created_at + LIFETIME:
        return "expired"
    if now >= sign_in.last_seen_at + idle:
        return "idle"
    return None


def resume(db: Session, token: str, now: datetime, idle: timedelta) -> tuple[SignIn, User] | None:
    """The sign-in and its user if the token belongs to one still open; ends it if its time is up."""
    if not token or len(token) > 100:
        return None
    sign_in = db.exec(select(SignIn).where(SignIn.token_hash == token_hash(token))).first()
    if sign_in is None or sign_in.ended_at is not None:
        return None
    user = db.get(User, sign_in.user_id)
    problem = _problem(sign_in, user, now, idle)
    if problem is not None:
        end(db, sign_in, problem, now)
        return None
    assert user is not None and sign_in.last_seen_at is not None
    if now - sign_in.last_seen_at >= SEEN_EVERY:
        sign_in.last_seen_at = now
        db.add(sign_in)
    return sign_in, user


def end(db: Session, sign_in: SignIn, reason: str, now: datetime) -> None:
    if sign_in.ended_at is None:
        sign_in.ended_at, sign_in.end_reason = now, reason
        db.add(sign_in)


def end_all(db: Session, user_id: int, reason: str, now: datetime, *, keep: int | None = None) -> int:
    """Ends every open sign-in of a user (but `keep`, the caller's own, if given); how many ended."""
    query = select(SignIn).where(SignIn.user_id == user_id, col(SignIn.ended_at).is_(None))
    if keep is not None:
        query = query.where(SignIn.id != keep)
    rows = db.exec(query).all()
    for row in rows:
        end(db, row, reason, now)
    return len(rows)


def open_for(db: Session, user_ids: list[int], now: datetime, idle: timedelta) -> list[SignIn]:
    """The sign-ins of these users that are still open and in time, newest first."""
    rows = db.exec(
        select(SignIn)
        .where(col(SignIn.user_id).in_(user_ids), col(SignIn.ended_at).is_(None))
        .order_by(col(SignIn.created_at).desc())
    ).all()
    users = {u.id: u for u in db.exec(select(User).where(col(User.id).in_(user_ids))).all()}
    return [row for row in rows if _problem(row, users.get(row.user_id), now, idle) is None]


def forget_old(db: Session, now: datetime) -> int:
    """Deletes sign-ins that began more than KEEP ago (all long ended); how many."""
    rows = db.exec(select(SignIn).where(col(SignIn.created_at) < now - KEEP)).all()
    for row in rows:
        db.delete(row)
    return len(rows)


def change_password(db: Session, user: User, password_hash: str, now: datetime, *, reason: str) -> None:
    """A new password ends every sign-in of the account, the caller's own included: sign in again with it."""
    assert user.id is not None
    user.password_hash, user.password_changed_at, user.failed_logins, user.locked_until = password_hash, now, 0, None
    db.add(user)
    end_all(db, user.id, reason, now)


def change_role(db: Session, user: User, role: str, now: datetime) -> None:
    assert user.id is not None
    if role != user.role:
        user.role = role
        db.add(user)
        end_all(db, user.id, "role_change", now)


def deactivate(db: Session, user: User, now: datetime) -> None:
    assert user.id is not None
    user.active = False
    db.add(user)
    end_all(db, user.id, "deactivated", now)


# Refused sign-ins from one address in a window, counted in the database so the limit holds
# across every worker (the per-process limiter alone would allow that many times more).
FAILED_WINDOW = timedelta(minutes=10)
MAX_FAILED_PER_ADDRESS = 20


def too_many_failures(db: Session, address: str, now: datetime) -> bool:
    count = db.exec(
        select(func.count(col(FailedSignIn.id))).where(
            FailedSignIn.address == address[:64], col(FailedSignIn.at) > now - FAILED_WINDOW
        )
    ).one()
    return int(count) >= MAX_FAILED_PER_ADDRESS


def record_failure(db: Session, address: str, now: datetime) -> None:
    db.add(FailedSignIn(address=address[:64], at=now))


def forget_failures(db: Session, now: datetime) -> int:
    """Refused sign-ins older than a day say nothing the limit needs: deleted."""
    rows = db.exec(select(FailedSignIn).where(col(FailedSignIn.at) < now - timedelta(days=1))).all()
    for row in rows:
        db.delete(row)
    return len(rows)
