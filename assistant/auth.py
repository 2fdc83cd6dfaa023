"""Signing in: Argon2 password hashes, lockout after repeated failures, reset links that expire."""

from __future__ import annotations

from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlmodel import Session, select

from assistant.db.models import User

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
RESET_VALID_SECONDS = 3600
MIN_PASSWORD = 12
_hasher = PasswordHasher()
# Computed once so a sign-in for an unknown email costs the same as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password, only for timing")


class PasswordRuleError(ValueError):
    pass


def hash_password(password: str) -> str:
    check_password_rules(password)
    return _hasher.hash(password)


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise PasswordRuleError(f"Use at least {MIN_PASSWORD} characters.")
    if len(password) > 200:
        raise PasswordRuleError("Use at most 200 characters.")
    if password.lower() == password.upper() and not any(c.isdigit() for c in password):
        raise PasswordRuleError("Use some letters and numbers, or a few unrelated words.")


def authenticate(db: Session, email: str, password: str, now: datetime) -> tuple[User | None, str | None]:
    """The user on success; otherwise a message that does not say whether the email exists."""
    user = db.exec(select(User).where(User.email == email.strip().lower())).first()
    generic = "The email or password is not right, or the account is locked. Try again or reset your password."
    if user is None or not user.active:
        _verify(_DUMMY_HASH, password)
        return None, generic
    if user.locked_until and user.locked_until > now:
        _verify(_DUMMY_HASH, password)
        return None, generic
    if not _verify(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until, user.failed_logins = now + LOCKOUT, 0
        db.add(user)
        return None, generic
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    db.add(user)
    return user, None


def _verify(hashed: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(hashed, password))
    except (VerificationError, InvalidHashError):
        return False


def reset_token(secret: str, user: User) -> str:
    # Bound to the current hash: the link stops working once the password changes.
    return str(
        URLSafeTimedSerializer(secret, salt="password-reset").dumps({"id": user.id, "h": user.password_hash[-16:]})
    )


def user_for_reset(db: Session, secret: str, token: str) -> User | None:
    try:
        data = URLSafeTimedSerializer(secret, salt="password-reset").loads(token, max_age=RESET_VALID_SECONDS)
    except (BadSignature, SignatureExpired):
        return None
    user = db.get(User, data.get("id")) if isinstance(data, dict) else None
    if user is None or not user.active or user.password_hash[-16:] != data.get("h"):
        return None
    return user
