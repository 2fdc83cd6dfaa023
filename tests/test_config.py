"""Settings: embedded defaults, and refusal to start in production without secrets."""

from __future__ import annotations

import pytest

from assistant.config import ConfigError, Settings, load_settings

KEY = "Zq3v8LkP0wXrT5mN2bYc7HdJ4sFg9QeA1uKi6oWz"  # 40 characters, 32 different ones


def test_embedded_defaults_are_safe() -> None:
    settings = load_settings({})
    settings.validate()
    assert settings.database_url.startswith("sqlite:///") and settings.sms_transport == "console"


def test_environment_is_read() -> None:
    settings = load_settings(
        {
            "ASSISTANT_DATABASE_URL": "postgresql+psycopg://db/x",
            "TWILIO_AUTH_TOKEN": "t",
            "ASSISTANT_TICK_SECONDS": "2.5",
        }
    )
    assert (settings.database_url, settings.twilio_auth_token, settings.tick_seconds) == (
        "postgresql+psycopg://db/x",
        "t",
        2.5,
    )


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({}, "ASSISTANT_SECRET_KEY"),
        ({"ASSISTANT_SECRET_KEY": KEY}, "TWILIO_AUTH_TOKEN"),
        ({"ASSISTANT_SECRET_KEY": KEY, "TWILIO_AUTH_TOKEN": "t" * 32}, "ASSISTANT_SMS_TRANSPORT"),
        (
            {
                "ASSISTANT_SECRET_KEY": KEY,
                "TWILIO_AUTH_TOKEN": "t" * 32,
                "ASSISTANT_SMS_TRANSPORT": "twilio",
                "TWILIO_FROM_NUMBER": "+447700900000",
            },
            "ASSISTANT_PUBLIC_URL",
        ),
    ],
)
def test_production_refuses_to_start_without_secrets(env: dict[str, str], problem: str) -> None:
    settings = load_settings({"ASSISTANT_ENV": "production", **env})
    with pytest.raises(ConfigError, match=problem):
        settings.validate()


PRODUCTION = {
    "ASSISTANT_ENV": "production",
    "ASSISTANT_SECRET_KEY": KEY,
    "TWILIO_AUTH_TOKEN": "t" * 32,
    "ASSISTANT_SMS_TRANSPORT": "twilio",
    "TWILIO_FROM_NUMBER": "+447700900000",
    "ASSISTANT_PUBLIC_URL": "https://assistant.example.org",
    "ASSISTANT_SMTP_HOST": "smtp.example.org",
}


def production(**changes: str) -> Settings:
    return load_settings({k: v for k, v in (PRODUCTION | changes).items() if v != ""})


def test_production_with_everything_set_starts() -> None:
    production().validate({})


@pytest.mark.parametrize("value", ["1", "true", "True", "on", "yes", "debug", "2", " "])
def test_production_refuses_any_flask_debug_value_flask_honours(value: str) -> None:
    with pytest.raises(ConfigError, match="Flask debug must be off"):
        production().validate({"FLASK_DEBUG": value})


@pytest.mark.parametrize("value", ["", "0", "false", "FALSE", "no", "No"])
def test_production_accepts_flask_debug_values_flask_ignores(value: str) -> None:
    production().validate({"FLASK_DEBUG": value})


def test_flask_debug_in_the_environment_stops_the_app_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.app import create_app

    monkeypatch.setenv("FLASK_DEBUG", "on")
    settings = {k.removeprefix("ASSISTANT_").lower(): v for k, v in PRODUCTION.items() if k.startswith("ASSISTANT_")}
    with pytest.raises(ConfigError, match="debug"):
        create_app(settings | {"twilio_auth_token": "t" * 32, "twilio_from_number": "+447700900000"})


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("x", "shorter than 32 bytes"),
        ("Zq3v8LkP0wXrT5mN2bYc7HdJ4sFg9Qe", "shorter than 32 bytes"),  # 31 characters
        ("s" * 64, "too few different characters"),
        ("abababababababababababababababab", "too few different characters"),
        ("0123456789" * 4, "short pattern repeated"),
    ],
)
def test_production_refuses_a_weak_secret_key(key: str, why: str) -> None:
    with pytest.raises(ConfigError, match=f"ASSISTANT_SECRET_KEY (is |is a |has )?{why}"):
        production(ASSISTANT_SECRET_KEY=key).validate({})


def test_a_secret_key_is_measured_in_bytes() -> None:
    # 16 characters, 32 bytes in UTF-8, all different: long enough.
    production(ASSISTANT_SECRET_KEY="ĀāĂăĄąĆćĈĉĊċČčĎď").validate({})
    with pytest.raises(ConfigError, match="shorter than 32 bytes"):
        production(ASSISTANT_SECRET_KEY="ĀāĂăĄąĆćĈĉĊċČčĎ").validate({})


def test_production_refuses_email_without_an_smtp_host() -> None:
    with pytest.raises(ConfigError, match="ASSISTANT_SMTP_HOST is empty"):
        production(ASSISTANT_SMTP_HOST="").validate({})
    production(ASSISTANT_SMTP_HOST="", ASSISTANT_MAIL_LOG_ONLY="true").validate({})


def test_unknown_transport_is_refused() -> None:
    with pytest.raises(ConfigError):
        load_settings({"ASSISTANT_SMS_TRANSPORT": "pigeon"}).validate()
