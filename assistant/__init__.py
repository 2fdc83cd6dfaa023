"""The participant contact assistant: SMS check-ins and reminders for employment support.

Importing the package loads nothing heavy, so `assistant.engine` stays free of
Flask, SQLModel, Twilio and APScheduler. `gunicorn 'assistant:create_app()'` serves it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(test_config: dict[str, Any] | None = None, **kwargs: Any) -> Flask:
    from assistant.app import create_app as factory

    return factory(test_config, **kwargs)


__all__ = ["create_app"]
