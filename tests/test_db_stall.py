"""A stalled database: a lock held elsewhere makes the webhook answer 503 within the lock timeout,
with nothing stored, and Twilio's retry of the same MessageSid is then recorded and answered once."""

from __future__ import annotations

import io
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlmodel import func, select

from assistant.app import create_app
from assistant.clock import FixedClock
from assistant.db.models import InboundReceipt, Message
from assistant.db.units import make_engine, transaction
from assistant.imports.caseload import import_caseload
from assistant.jobs.tick import tick
from assistant.runtime import Runtime, build_runtime
from assistant.transports import ConsoleTransport

from .conftest import Phone, outbound, test_settings
from .pg import PostgresServer

LOCK_TIMEOUT = 1.0
# Well under gunicorn's 10 s: the answer comes from the lock timeout, not a killed worker.
ANSWERED_WITHIN = LOCK_TIMEOUT + 3


@pytest.fixture
def stall_rt(db_url: str, tmp_path: Path, clock: FixedClock, sms_console: io.StringIO) -> Iterator[Runtime]:
    settings = test_settings(db_url, tmp_path, db_lock_timeout=LOCK_TIMEOUT, db_statement_timeout=2 * LOCK_TIMEOUT)
    runtime = build_runtime(
        settings, clock=clock, transport=ConsoleTransport(record=settings.console_log, stream=sms_console)
    )
    yield runtime
    runtime.engine.dispose()


@contextmanager
def database_locked(url: str) -> Iterator[None]:
    """Another connection holds the lock the webhook's transaction needs, until the block ends."""
    if url.startswith("sqlite"):
        path = sa.make_url(url).database
        assert path
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")
            yield
            other.execute("ROLLBACK")
        finally:
            other.close()
        return
    engine = sa.create_engine(url)
    try:
        with engine.connect() as other:
            # Should the webhook wait on the lock instead of giving up, the holder is ended after a
            # while, the webhook goes through, and the test fails on its answer rather than hanging.
            other.exec_driver_sql("SET idle_in_transaction_session_timeout = '6s'")
            other.exec_driver_sql("BEGIN")
            other.exec_driver_sql("LOCK TABLE message IN ACCESS EXCLUSIVE MODE")
            yield
            if not other.closed:
                other.rollback()
    finally:
        engine.dispose()


def _count(rt: Runtime, model: type) -> int:
    with transaction(rt.engine) as db:
        return int(db.exec(select(func.count()).select_from(model)).one())


def test_a_held_lock_answers_503_fast_and_the_retry_is_recorded_once(
    stall_rt: Runtime, db_url: str, caseload_file: Path
) -> None:
    rt = stall_rt
    import_caseload(rt, caseload_file, rt.clock.now())
    client: FlaskClient = create_app(runtime=rt).test_client()
    phone = Phone(client, rt)
    sid = "SM" + "e" * 32

    with database_locked(db_url):
        started = time.monotonic()
        stalled = phone.text("+447700900101", "hello, are you there", sid=sid)
        took = time.monotonic() - started
    assert stalled.status_code == 503
    assert took < ANSWERED_WITHIN, f"answered after {took:.1f} s"
    assert _count(rt, InboundReceipt) == 0 and _count(rt, Message) == 0

    retried = phone.text("+447700900101", "hello, are you there", sid=sid)
    again = phone.text("+447700900101", "hello, are you there", sid=sid)
    assert retried.status_code == again.status_code == 200
    assert _count(rt, InboundReceipt) == 1
    with transaction(rt.engine) as db:
        inbound = db.exec(select(Message).where(Message.direction == "in")).all()
    assert [m.body for m in inbound] == ["hello, are you there"]
    [reply] = outbound(rt)
    assert reply.status == "sent"


def test_engine_timeouts_reach_the_database(db_url: str) -> None:
    engine = make_engine(db_url, lock_timeout=1.5, statement_timeout=4)
    try:
        with engine.connect() as connection:
            if db_url.startswith("sqlite"):
                assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1500
            else:
                assert connection.exec_driver_sql("SHOW lock_timeout").scalar() == "1500ms"
                assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "4s"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_long_statement_is_cut_off_by_the_statement_timeout(postgres: PostgresServer) -> None:
    engine = make_engine(postgres.url, lock_timeout=0.2, statement_timeout=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError), engine.connect() as connection:
            connection.exec_driver_sql("SELECT pg_sleep(5)")
        assert time.monotonic() - started < 3
    finally:
        engine.dispose()


def test_the_scheduler_gives_up_on_a_held_lock_fast_and_sends_once_after(
    db_url: str, tmp_path: Path, clock: FixedClock, sms_console: io.StringIO, caseload_file: Path
) -> None:
    settings = test_settings(
        db_url, tmp_path, db_lock_timeout=LOCK_TIMEOUT, db_statement_timeout=2 * LOCK_TIMEOUT, dispatch="off"
    )
    rt = build_runtime(
        settings, clock=clock, transport=ConsoleTransport(record=settings.console_log, stream=sms_console)
    )
    try:
        import_caseload(rt, caseload_file, rt.clock.now())
        phone = Phone(create_app(runtime=rt).test_client(), rt)
        assert phone.text("+447700900101", "hello", sid="SM" + "f" * 32).status_code == 200
        [queued] = outbound(rt)
        assert queued.status == "queued"  # the reply waits for the scheduler

        with database_locked(db_url):
            started = time.monotonic()
            stalled = tick(rt, rt.clock.now())
            took = time.monotonic() - started
        assert took < ANSWERED_WITHIN, f"gave up after {took:.1f} s"
        # The tick ends at the first job that cannot reach the database, and says so.
        assert len(stalled.failed_jobs) == 1 and "OperationalError" in next(iter(stalled.failed_jobs.values()))
        assert [m.status for m in outbound(rt)] == ["queued"]

        assert tick(rt, rt.clock.now()).sends.sent == 1
        assert tick(rt, rt.clock.now()).sends.sent == 0
        assert [m.status for m in outbound(rt)] == ["sent"]
        assert settings.console_log is not None
        assert len(settings.console_log.read_text(encoding="utf-8").splitlines()) == 1
    finally:
        rt.engine.dispose()
