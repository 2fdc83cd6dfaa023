"""Settings from ASSISTANT_* (and TWILIO_*) environment variables, with safe embedded defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET = "dev-secret-not-for-production"
DEV_TWILIO_TOKEN = "dev-twilio-token"
TRANSPORTS = ("console", "twilio")


class ConfigError(RuntimeError):
    """Settings the assistant refuses to start with."""


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str = field(default_factory=lambda: f"sqlite:///{ROOT / 'instance' / 'assistant.db'}")
    sms_transport: str = "console"
    public_url: str = "http://localhost:5000"
    secret_key: str = DEV_SECRET
    flows_dir: Path = ROOT / "flows"
    messages_dir: Path = ROOT / "messages"
    phrases_dir: Path = ROOT / "phrases"
    # Where what a compile of the phrase files found is kept for the next start on the same files
    # and code: empty for the cache folder (systemd's CacheDirectory=, else ~/.cache), "off" for none.
    phrase_cache_dir: str = ""
    twilio_account_sid: str = "AC" + "0" * 32
    twilio_auth_token: str = DEV_TWILIO_TOKEN
    twilio_from_number: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_api_url: str = ""
    # Run the clock (due contacts, timeouts, outbox) inside the web process.
    scheduler_in_process: bool = False
    tick_seconds: float = 10.0
    # After an inbound message commits, send its replies at once: "thread" (in the
    # background), "inline" (before the webhook answers; tests), or "off" (next tick).
    dispatch: str = "thread"
    # Requests per sender address the webhooks take before answering 429 (Twilio retries).
    webhook_rate_limit: str = "3000 per minute"
    # What one sending number can take (a UK long code: about 10 segments a second).
    send_rate: float = 10.0
    console_log: Path | None = None
    # Email for flags and password resets: no SMTP host means emails are printed to the console
    # (development), or, with mail_log_only, only noted in the log without their content.
    smtp_host: str = ""
    smtp_port: float = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    mail_from: str = "assistant@localhost"
    # No SMTP host on purpose: each email is only noted in the log (its id and length: never its
    # recipient, subject, body or links), and nobody receives it. Production needs this or an SMTP host.
    mail_log_only: bool = False
    dashboard_url: str = ""
    default_timezone: str = "Europe/London"
    default_language: str = "en-GB"
    # Reverse proxies in front of the web process whose X-Forwarded-For/-Proto/-Host are trusted (0: none).
    proxy_hops: float = 0
    # Minutes without a request after which a dashboard sign-in ends (it ends 8 hours after sign-in regardless).
    session_idle_minutes: float = 30
    # Log level of the JSON-lines logs: DEBUG, INFO, WARNING, ERROR or CRITICAL.
    log_level: str = "INFO"
    # Seconds a transaction waits for another's lock (SQLite busy timeout, PostgreSQL lock_timeout)
    # and the longest one statement may run (PostgreSQL statement_timeout): both well under the web
    # worker's 10 s, so a stalled database answers 503 (Twilio retries) instead of a killed worker.
    db_lock_timeout: float = 3.0
    db_statement_timeout: float = 5.0

    @property
    def production(self) -> bool:
        return self.env == "production"

    def validate(self, environ: Mapping[str, str] | None = None) -> None:
        """Refuse settings that cannot work, and in production settings that are unsafe.
        `environ` (default: the process environment) is where Flask's own FLASK_DEBUG is read."""
        environ = os.environ if environ is None else environ
        if self.env not in ("development", "production"):
            raise ConfigError("ASSISTANT_ENV must be development or production")
        if self.dispatch not in ("thread", "inline", "off"):
            raise ConfigError("ASSISTANT_DISPATCH must be thread, inline or off")
        if self.sms_transport not in TRANSPORTS:
            raise ConfigError(f"ASSISTANT_SMS_TRANSPORT must be one of {TRANSPORTS}")
        if not (0 < self.db_lock_timeout <= self.db_statement_timeout):
            raise ConfigError("ASSISTANT_DB_LOCK_TIMEOUT must be above 0 and at most ASSISTANT_DB_STATEMENT_TIMEOUT")
        if self.sms_transport == "twilio" and not (self.twilio_from_number or self.twilio_messaging_service_sid):
            raise ConfigError("the twilio transport needs TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        if not 1 <= self.session_idle_minutes <= 8 * 60:
            raise ConfigError("ASSISTANT_SESSION_IDLE_MINUTES must be between 1 and 480")
        if self.production:
            problems = []
            if self.secret_key in ("", DEV_SECRET):
                problems.append("ASSISTANT_SECRET_KEY is missing or the development default")
            elif weak := weak_secret(self.secret_key):
                problems.append(f"ASSISTANT_SECRET_KEY {weak}")
            if self.twilio_auth_token in ("", DEV_TWILIO_TOKEN):
                problems.append("TWILIO_AUTH_TOKEN is missing or the development default")
            if self.sms_transport != "twilio":
                problems.append("ASSISTANT_SMS_TRANSPORT must be twilio in production")
            if flask_debug(environ) or environ.get("FLASK_ENV") == "development":
                problems.append("Flask debug must be off in production (unset FLASK_DEBUG or make it 0)")
            if not self.smtp_host and not self.mail_log_only:
                problems.append(
                    "ASSISTANT_SMTP_HOST is empty: set it, or ASSISTANT_MAIL_LOG_ONLY=true to send no email at all"
                )
            if not self.public_url.startswith("https://"):
                problems.append("ASSISTANT_PUBLIC_URL must be the https URL Twilio calls")
            if problems:
                raise ConfigError("refusing to start in production: " + "; ".join(problems))


def flask_debug(environ: Mapping[str, str]) -> bool:
    """Whether Flask would switch debug mode on: its get_debug_flag() reads FLASK_DEBUG this way
    (any non-empty value but 0, false or no, in any case)."""
    value = environ.get("FLASK_DEBUG")
    return bool(value and value.lower() not in {"0", "false", "no"})


MIN_SECRET_BYTES = 32


def weak_secret(key: str) -> str | None:
    """Why a secret key is too weak to sign sessions and reset links, or None. It must be at least
    32 bytes long (as UTF-8) and not obviously low in entropy: a repeated character or short pattern,
    or a handful of distinct characters, is refused. (secrets.token_urlsafe(32) or longer passes.)"""
    if len(key.encode("utf-8")) < MIN_SECRET_BYTES:
        return f"is shorter than {MIN_SECRET_BYTES} bytes"
    if len(set(key)) < 10:
        return "has too few different characters to be random"
    if any(key == (key[:n] * (len(key) // n + 1))[: len(key)] for n in range(1, len(key) // 2 + 1)):
        return "is a short pattern repeated, not random"
    return None


_ENV_NAMES = {
    "twilio_account_sid": "TWILIO_ACCOUNT_SID",
    "twilio_auth_token": "TWILIO_AUTH_TOKEN",
    "twilio_from_number": "TWILIO_FROM_NUMBER",
    "twilio_messaging_service_sid": "TWILIO_MESSAGING_SERVICE_SID",
}


def _convert(name: str, kind: Any, value: str) -> Any:
    text = str(kind)
    if "bool" in text:
        return value.strip().lower() in ("1", "true", "yes", "on")
    if "float" in text:
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a number, not {value!r}") from None
    if "Path" in text:
        return Path(value)
    return value


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        name = _ENV_NAMES.get(f.name, "ASSISTANT_" + f.name.upper())
        if name in environ and environ[name] != "":
            values[f.name] = _convert(name, f.type, environ[name])
    settings = replace(Settings(), **values)
    return replace(settings, **overrides) if overrides else settings
