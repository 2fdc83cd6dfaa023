"""Fixtures: the app and runtime on SQLite and on a real PostgreSQL server, with an injected clock."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message as EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, SQLModel, select

from assistant.app import create_app
from assistant.clock import FixedClock, SystemClock
from assistant.config import Settings
from assistant.db.models import Message, Participant, Service
from assistant.db.service_settings import ServiceSettings
from assistant.db.units import make_engine, transaction, upgrade
from assistant.imports.caseload import import_caseload
from assistant.runtime import Runtime, build_runtime
from assistant.signing import twilio_signature
from assistant.transports import ConsoleTransport

from .pg import PostgresServer, PostgresUnavailable, start_postgres
from .ports import free_port

IN_CI = os.environ.get("CI", "").lower() == "true"
START = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)  # a Sunday
PUBLIC_URL = "https://assistant.example.org"
AUTH_TOKEN = "test-auth-token-0123456789abcdef"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    try:
        server = start_postgres()
    except PostgresUnavailable as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI: {exc}")
        pytest.skip(str(exc))
    try:
        upgrade(server.url)
        yield server
    finally:
        server.stop()


def _truncate_all(url: str) -> None:
    engine = sa.create_engine(url)
    names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "assistant.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    server: PostgresServer = request.getfixturevalue("postgres")
    _truncate_all(server.url)
    return server.url


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


# Whatever reads the machine's clock during a test (a command run without --now, a runtime built
# without a clock) is told a time ten years after the dates the tests are written around, so a test
# that leans on today's date fails on every run, not only once the calendar has caught up with it.
# assistant/clock.py is the only reader of the real clock (tests/test_clock_reads.py checks that).
SYSTEM_CLOCK_AHEAD = timedelta(days=10 * 365)


@pytest.fixture(autouse=True)
def system_clock_far_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    real_now = SystemClock.now
    monkeypatch.setattr(SystemClock, "now", lambda self: real_now(self) + SYSTEM_CLOCK_AHEAD)


@pytest.fixture
def sms_console() -> io.StringIO:
    return io.StringIO()


def test_settings(db_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    base = Settings(
        database_url=db_url,
        public_url=PUBLIC_URL,
        twilio_auth_token=AUTH_TOKEN,
        dispatch="inline",
        console_log=tmp_path / "sms.jsonl",
    )
    return replace(base, **overrides)


test_settings.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
def rt(db_url: str, tmp_path: Path, clock: FixedClock, sms_console: io.StringIO) -> Iterator[Runtime]:
    settings = test_settings(db_url, tmp_path)
    runtime = build_runtime(
        settings, clock=clock, transport=ConsoleTransport(record=settings.console_log, stream=sms_console)
    )
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def app(rt: Runtime) -> Flask:
    return create_app(runtime=rt)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Phone:
    """Sends signed webhook requests the way Twilio does."""

    def __init__(self, client: FlaskClient, rt: Runtime) -> None:
        self.client = client
        self.rt = rt
        self.count = 0

    def sign(self, path: str, params: dict[str, str]) -> str:
        return twilio_signature(PUBLIC_URL + path, params, AUTH_TOKEN)

    def text(self, sender: str, body: str, *, sid: str | None = None) -> Any:
        self.count += 1
        params = {
            "MessageSid": sid or f"SM{self.count:032d}",
            "AccountSid": "AC" + "1" * 32,
            "From": sender,
            "To": "+447700900000",
            "Body": body,
        }
        return self.client.post(
            "/twilio/sms", data=params, headers={"X-Twilio-Signature": self.sign("/twilio/sms", params)}
        )

    def status(self, sid: str, status: str, error_code: str | None = None) -> Any:
        params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC" + "1" * 32}
        if error_code:
            params["ErrorCode"] = error_code
        return self.client.post(
            "/twilio/status", data=params, headers={"X-Twilio-Signature": self.sign("/twilio/status", params)}
        )


@pytest.fixture
def phone(client: FlaskClient, rt: Runtime) -> Phone:
    return Phone(client, rt)


def outbound(rt: Runtime) -> list[Message]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(Message).where(Message.direction == "out").order_by(Message.id)).all())  # type: ignore[arg-type]


CASELOAD_HEADER = (
    "participant_id,first_name,phone,specialist_email,specialist_name,service,cohort,checkin_day,checkin_time\n"
)


@pytest.fixture
def caseload_file(tmp_path: Path) -> Path:
    path = tmp_path / "caseload.csv"
    path.write_text(
        CASELOAD_HEADER
        + "P001,Alex,07700 900101,sam.jones@example.org,Sam Jones,north,out_of_work,Tue,10:30\n"
        + "P002,Jordan,+44 7700 900102,sam.jones@example.org,Sam Jones,north,in_work,Wed,12:30\n"
        + "P003,Priya,447700900103,chris.lee@example.org,Chris Lee,north,out_of_work,Thu,11:00\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def unit(rt: Runtime, caseload_file: Path) -> Iterator[tuple[Session, Participant]]:
    """One open unit of work on the imported caseload, and Alex (P001) in it."""
    import_caseload(rt, caseload_file, rt.clock.now())
    with transaction(rt.engine) as db:
        participant = db.exec(select(Participant).where(Participant.external_id == "P001")).one()
        yield db, participant


def make_engine_for(url: str) -> sa.Engine:
    return make_engine(url)


# Real SMTP on loopback: an aiosmtpd server that keeps what it receives.
class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = inbox.port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def mailing_service(rt: Runtime, smtp: tuple[Inbox, int], caseload_file: Path, settings: dict[str, Any]) -> Inbox:
    """Email through the SMTP server on loopback, the caseload imported, and its one service given
    these settings; the inbox that receives what is sent."""
    inbox, port = smtp
    rt.settings = replace(rt.settings, smtp_host="127.0.0.1", smtp_port=port, mail_from="assistant@service.example")
    import_caseload(rt, caseload_file, rt.clock.now())
    with transaction(rt.engine) as db:
        service = db.exec(select(Service)).one()
        service.settings = ServiceSettings.from_json(settings).to_json()
        db.add(service)
    return inbox
