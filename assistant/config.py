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
    # Email for flags: no SMTP host means emails are printed to the console.
    smtp_host: str = ""
    smtp_port: float = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    mail_from: str = "assistant@localhost"
    dashboard_url: str = ""
    default_timezone: str = "Europe/London"
    default_language: str = "en-GB"
    # Reverse proxies in front of the web process whose X-Forwarded-For/-Proto/-Host are trusted (0: none).
    proxy_hops: float = 0
    # Minutes without a request after which a dashboard sign-in ends (it ends 8 hours after sign-in regardless).
    session_idle_minutes: float = 30
    # Log level of the JSON-lines logs: DEBUG, INFO, WARNING, ERROR or CRITICAL.
    log_level: str = "INFO"

    @property
    def production(self) -> bool:
        return self.env == "production"

    def validate(self) -> None:
        if self.env not in ("development", "production"):
            raise ConfigError("ASSISTANT_ENV must be development or production")
        if self.dispatch not in ("thread", "inline", "off"):
            raise ConfigError("ASSISTANT_DISPATCH must be thread, inline or off")
        if self.sms_transport not in TRANSPORTS:
            raise ConfigError(f"ASSISTANT_SMS_TRANSPORT must be one of {TRANSPORTS}")
        if self.sms_transport == "twilio" and not (self.twilio_from_number or self.twilio_messaging_service_sid):
            raise ConfigError("the twilio transport needs TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        if not 1 <= self.session_idle_minutes <= 8 * 60:
            raise ConfigError("ASSISTANT_SESSION_IDLE_MINUTES must be between 1 and 480")
        if self.production:
            problems = []
            if self.secret_key in ("", DEV_SECRET):
                problems.append("ASSISTANT_SECRET_KEY is missing or the development default")
            if self.twilio_auth_token in ("", DEV_TWILIO_TOKEN):
                problems.append("TWILIO_AUTH_TOKEN is missing or the development default")
            if self.sms_transport != "twilio":
                problems.append("ASSISTANT_SMS_TRANSPORT must be twilio in production")
            if (
                os.environ.get("FLASK_DEBUG", "").lower() in ("1", "true", "yes")
                or os.environ.get("FLASK_ENV") == "development"
            ):
                problems.append("Flask debug must be off in production")
            if not self.public_url.startswith("https://"):
                problems.append("ASSISTANT_PUBLIC_URL must be the https URL Twilio calls")
            if problems:
                raise ConfigError("refusing to start in production: " + "; ".join(problems))


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
