"""Rate limits on sign-in and on the webhook; a refused request stores nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlmodel import select

from assistant.app import create_app
from assistant.clock import FixedClock
from assistant.config import ConfigError, load_settings
from assistant.db.models import FailedSignIn, Message
from assistant.db.units import transaction
from assistant.imports.caseload import import_caseload
from assistant.runtime import Runtime

from .conftest import Phone


def test_sign_in_attempts_are_limited(app: object) -> None:
    from .dashboard.conftest import csrf

    client = app.test_client()  # type: ignore[attr-defined]
    token = csrf(client)
    codes = [
        client.post("/login", data={"email": "x@example.org", "password": "y", "csrf_token": token}).status_code
        for _ in range(12)
    ]
    assert codes[:10].count(429) == 0 and codes[-1] == 429


def test_webhook_flood_is_refused_and_stores_nothing(rt: Runtime, caseload_file: Path) -> None:
    rt.settings = replace(rt.settings, webhook_rate_limit="5 per minute")
    import_caseload(rt, caseload_file, rt.clock.now())
    phone = Phone(create_app(runtime=rt).test_client(), rt)
    codes = [phone.text("+447700900101", f"message {n}").status_code for n in range(7)]
    assert codes == [200] * 5 + [429, 429]
    with transaction(rt.engine) as db:
        assert len(db.exec(select(Message).where(Message.direction == "in")).all()) == 5


def test_the_webhooks_share_one_count_by_address_and_each_app_starts_afresh(rt: Runtime, caseload_file: Path) -> None:
    rt.settings = replace(rt.settings, webhook_rate_limit="4 per minute")
    import_caseload(rt, caseload_file, rt.clock.now())
    client = create_app(runtime=rt).test_client()
    phone = Phone(client, rt)
    codes = [phone.text("+447700900101", "fine").status_code, phone.status("SMunknown", "delivered").status_code]
    codes += [phone.text("+447700900101", "ok").status_code, phone.status("SMunknown", "delivered").status_code]
    assert codes == [200, 204, 200, 204]
    assert phone.status("SMunknown", "delivered").status_code == 429
    assert phone.text("+447700900101", "late").status_code == 429
    # Another address has a count of its own; the sign-in page is not under the webhooks' limit.
    other = Phone(create_app(runtime=rt).test_client(), rt)
    assert client.get("/healthz", environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 200
    assert client.get("/login").status_code == 200
    # A new app (a restarted worker) counts from nothing.
    assert other.text("+447700900101", "new worker").status_code == 200


def test_production_refuses_flask_debug(monkeypatch: object) -> None:
    import pytest

    monkeypatch.setenv("FLASK_DEBUG", "1")  # type: ignore[attr-defined]
    settings = load_settings(
        {
            "ASSISTANT_ENV": "production",
            "ASSISTANT_SECRET_KEY": "Zq3v8LkP0wXrT5mN2bYc7HdJ4sFg9QeA1uKi6oWz",
            "ASSISTANT_SMTP_HOST": "smtp.example.org",
            "TWILIO_AUTH_TOKEN": "t" * 32,
            "ASSISTANT_SMS_TRANSPORT": "twilio",
            "TWILIO_FROM_NUMBER": "+447700900000",
            "ASSISTANT_PUBLIC_URL": "https://assistant.example.org",
        }
    )
    with pytest.raises(ConfigError, match="debug"):
        settings.validate()


def test_refused_sign_ins_are_counted_across_workers(
    rt: Runtime, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database counts refused sign-ins from every worker. Here the workers share one process,
    so the per-process limiter is switched off to show the shared count on its own."""
    from assistant.limits import limiter

    from .dashboard.conftest import csrf

    monkeypatch.setattr(limiter, "enabled", False)
    workers = [create_app(runtime=rt).test_client() for _ in range(3)]

    def attempt(client: FlaskClient) -> int:
        data = {"email": "x@example.org", "password": "wrong", "csrf_token": csrf(client)}
        return int(client.post("/login", data=data).status_code)

    assert [attempt(workers[0]) for _ in range(10)] == [401] * 10
    assert [attempt(workers[1]) for _ in range(10)] == [401] * 10
    assert attempt(workers[2]) == 429  # a fresh worker, but twenty refusals from this address already
    with transaction(rt.engine) as db:
        assert len(db.exec(select(FailedSignIn)).all()) == 20  # the refused attempt is not counted again
    clock.set(clock.now() + timedelta(minutes=11))
    assert attempt(workers[2]) == 401  # the window has passed
