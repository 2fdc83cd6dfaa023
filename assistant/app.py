"""The Flask application: webhooks now, the dashboard later."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask, Response, render_template, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import exc as sa_exc
from werkzeug.middleware.proxy_fix import ProxyFix

from assistant.clock import Clock
from assistant.config import ConfigError, load_settings
from assistant.limits import AddressLimit, limiter
from assistant.logs import configure as configure_logging
from assistant.runtime import Runtime, build_runtime
from assistant.sending.dispatch import Dispatcher
from assistant.transports import Transport


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
    configure_logging(rt.settings.log_level)
    production = rt.settings.production
    if production and app.debug:
        # Flask read FLASK_DEBUG (or was told to debug): the debugger would run code for anyone.
        raise ConfigError("refusing to start in production: Flask debug must be off")
    secure = rt.settings.public_url.startswith("https://")
    _configure(app, rt, secure=secure)
    _register_blueprints(app)
    _add_request_guards(app, production=production, secure=secure)
    _add_error_pages(app)
    if rt.settings.scheduler_in_process:
        from assistant.jobs.tick import start_clock

        app.extensions["assistant.clock"] = start_clock(rt)
    return app


class _NoSessionForTwilio(SecureCookieSessionInterface):
    """Twilio's webhooks carry no cookie and sign nobody in: Flask opens them no session (reading the
    cookie makes a signing serializer on every request), and a view that tried to write one would fail."""

    def open_session(self, app: Flask, request: Any) -> SecureCookieSession | None:
        if request.path.startswith("/twilio/"):
            return self.make_null_session(app)
        return super().open_session(app, request)


def _configure(app: Flask, rt: Runtime, *, secure: bool) -> None:
    """Proxy headers, cookie and request limits, and the runtime and dispatcher the views use."""
    if (hops := int(rt.settings.proxy_hops)) > 0:
        # Behind that many reverse proxies: take the client's address, scheme and host from X-Forwarded-*.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    app.config.update(
        SECRET_KEY=rt.settings.secret_key,
        MAX_CONTENT_LENGTH=64 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_SAMESITE="Lax",
        # Sign-ins are rows (assistant/care/signins.py) that end after 8 hours or when idle; the cookie
        # is a browser session cookie so that Flask-Login's "strong" protection is not relaxed.
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        REMEMBER_COOKIE_DURATION=timedelta(seconds=0),
        WTF_CSRF_TIME_LIMIT=8 * 3600,
    )
    app.session_interface = _NoSessionForTwilio()
    app.extensions["assistant"] = rt
    app.extensions["assistant.sending.dispatch"] = Dispatcher(rt)
    app.extensions["assistant.webhook_limit"] = AddressLimit()  # fresh counts per app


def _register_blueprints(app: Flask) -> None:
    """The upload allowance, CSRF protection, the rate limiter, then every blueprint, in that order."""
    from assistant import unknown_numbers, web, webhooks
    from assistant.web.imports import MAX_UPLOAD

    @app.before_request
    def allow_csv_uploads() -> None:
        # Before the CSRF check reads the form: only the import upload may be larger than 64 KB.
        if request.endpoint == "imports.imports_page" and request.method == "POST":
            request.max_content_length = MAX_UPLOAD + 64 * 1024

    csrf = CSRFProtect(app)
    csrf.exempt(webhooks.bp)  # Twilio signs its requests instead
    limiter.init_app(app)  # fresh counts per app
    app.register_blueprint(webhooks.bp)
    web.init_app(app)
    app.register_blueprint(unknown_numbers.bp)


def _add_request_guards(app: Flask, *, production: bool, secure: bool) -> None:
    """Requests refused before any view runs, and the security headers on every response."""

    @app.before_request
    def refuse_debug_in_production() -> tuple[str, int] | None:
        # Debug switched on after the app was made (app.run(debug=True)): serve nothing.
        if production and app.debug:
            return "debug mode is refused in production", 503
        return None

    @app.before_request
    def refuse_nul_bytes() -> tuple[str, int] | None:
        # No field of ours can hold a NUL; PostgreSQL refuses them. Refused with a clear error, nothing
        # stored; but a participant's text is kept without them (the webhook removes them).
        if request.path == "/twilio/sms":
            return None
        values = list(request.args.values()) + (list(request.form.values()) if request.method == "POST" else [])
        if any("\x00" in value for value in values):
            return "NUL characters are not allowed", 400
        return None

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        )
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        if secure:
            response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        # Nothing a signed-in user is sent may be kept by a browser or proxy cache (names, numbers,
        # flags on any page); the private pages also when the answer is a redirect to sign in.
        # Twilio's webhooks carry no sign-in: asking Flask-Login would load a session for nothing.
        private = ("/", "/flags", "/team", "/audit", "/settings", "/sessions")
        if (
            request.path.startswith(("/participants", "/imports", "/unknown-numbers", "/campaigns", "/reports"))
            or request.path in private
            or (not request.path.startswith("/twilio/") and current_user.is_authenticated)
        ):
            response.headers["Cache-Control"] = "no-store"
        return response


def _add_error_pages(app: Flask) -> None:
    """Plain error pages for people, short answers for Twilio, and 503 when the database is down."""
    from assistant.web.imports import MAX_UPLOAD

    @app.errorhandler(429)
    def too_many(_error: Exception) -> tuple[str, int]:
        if request.path.startswith("/twilio"):
            return "too many requests", 429  # Twilio retries
        return render_template("error.html", title="Too many attempts", text="Please wait a minute and try again."), 429

    @app.errorhandler(413)
    def too_large(_error: Exception) -> tuple[str, int]:
        return render_template(
            "error.html",
            title="That file is too large",
            text=f"Files can be {MAX_UPLOAD // (1024 * 1024)} MB at most. Nothing was imported.",
        ), 413

    @app.errorhandler(500)
    def server_error(_error: Exception) -> tuple[str, int]:
        # Generic on purpose: no participant data, no stack trace, on an error page.
        return render_template(
            "error.html", title="Sorry, something went wrong", text="The problem has been logged. Please try again."
        ), 500

    @app.errorhandler(CSRFError)
    def csrf_failed(_error: CSRFError) -> tuple[str, int]:
        return render_template(
            "error.html", title="Your session has expired", text="Go back, reload the page and try again."
        ), 400

    @app.errorhandler(404)
    def not_found(_error: Exception) -> tuple[str, int]:
        if request.path.startswith("/twilio"):
            return "not found", 404
        return render_template(
            "error.html", title="Page not found", text="There is no page here, or you do not have access to it."
        ), 404

    @app.errorhandler(sa_exc.OperationalError)
    def database_unavailable(_error: Exception) -> tuple[str, int]:
        # Twilio treats a 5xx as "try again" (or uses its fallback URL): nothing is lost.
        return "database unavailable", 503
