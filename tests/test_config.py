"""Settings: embedded defaults, and refusal to start in production without secrets."""

from __future__ import annotations

import pytest

from assistant.config import ConfigError, load_settings


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
        ({"ASSISTANT_SECRET_KEY": "s" * 40}, "TWILIO_AUTH_TOKEN"),
        ({"ASSISTANT_SECRET_KEY": "s" * 40, "TWILIO_AUTH_TOKEN": "t" * 32}, "ASSISTANT_SMS_TRANSPORT"),
        (
            {
                "ASSISTANT_SECRET_KEY": "s" * 40,
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


def test_production_with_everything_set_starts() -> None:
    load_settings(
        {
            "ASSISTANT_ENV": "production",
            "ASSISTANT_SECRET_KEY": "s" * 40,
            "TWILIO_AUTH_TOKEN": "t" * 32,
            "ASSISTANT_SMS_TRANSPORT": "twilio",
            "TWILIO_FROM_NUMBER": "+447700900000",
            "ASSISTANT_PUBLIC_URL": "https://assistant.example.org",
        }
    ).validate()


def test_unknown_transport_is_refused() -> None:
    with pytest.raises(ConfigError):
        load_settings({"ASSISTANT_SMS_TRANSPORT": "pigeon"}).validate()
