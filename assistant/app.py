"""The Flask application: webhooks now, the dashboard later."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import exc as sa_exc

from .clock import Clock
from .config import load_settings
from .dispatch import Dispatcher
from .runtime import Runtime, build_runtime
from .sms import Transport


def create_app(
    test_config: dict[str, Any] | None = None,
    *,
    clock: Clock | None = None,
    transport: Transport | None = None,
    runtime: Runtime | None = None,
) -> Flask:
    """Flask app factory: `gunicorn 'assistant:create_app()'` serves it."""
    app = Flask(__name__, instance_relative_config=False)
    rt = runtime or build_runtime(load_settings(**(test_config or {})), clock=clock, transport=transport)
    app.config.update(SECRET_KEY=rt.settings.secret_key, MAX_CONTENT_LENGTH=64 * 1024)
    app.extensions["assistant"] = rt
    app.extensions["assistant.dispatch"] = Dispatcher(rt)

    from . import webhooks

    app.register_blueprint(webhooks.bp)

    @app.errorhandler(sa_exc.OperationalError)
    def database_unavailable(_error: Exception) -> tuple[str, int]:
        # Twilio treats a 5xx as "try again" (or uses its fallback URL): nothing is lost.
        return "database unavailable", 503

    if rt.settings.scheduler_in_process:
        from .scheduler import start_clock

        app.extensions["assistant.clock"] = start_clock(rt)
    return app
