"""Pooled PostgreSQL connections: one idle in the pool is checked before use and silently replaced
if its server connection has gone; one used a moment ago is not checked, so its loss fails one
unit of work, which rolls back, and the next unit runs on a new connection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from assistant.db.idle_ping import ping_when_idle
from assistant.db.units import make_engine, transaction

from .pg import PostgresServer

pytestmark = pytest.mark.postgres

NAME = "idle-ping-test"
BACKEND = sa.text("SELECT pg_backend_pid()")


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def url(postgres: PostgresServer) -> str:
    return f"{postgres.url}?application_name={NAME}"


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def engine(url: str, ticks: Ticks) -> Iterator[sa.Engine]:
    made = sa.create_engine(url, pool_size=1, max_overflow=0)
    ping_when_idle(made, idle_seconds=1.0, clock=ticks)
    yield made
    made.dispose()


def backend(engine: sa.Engine) -> int:
    with transaction(engine) as db:
        return int(db.execute(BACKEND).scalar_one())


def end_backends(postgres: PostgresServer) -> int:
    """End the pooled connections' server processes from outside, as a restart or a proxy would."""
    other = sa.create_engine(postgres.url)
    try:
        with other.begin() as connection:
            ended = connection.execute(
                sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": NAME},
            ).scalar_one()
    finally:
        other.dispose()
    return int(ended)


def test_a_connection_idle_in_the_pool_is_checked_and_replaced_when_gone(
    engine: sa.Engine, ticks: Ticks, postgres: PostgresServer
) -> None:
    first = backend(engine)
    assert end_backends(postgres) == 1
    ticks.now += 1.5  # idle past the window: checked on checkout
    second = backend(engine)  # no error reaches the unit of work
    assert second != first


def test_a_connection_used_a_moment_ago_is_not_checked_and_its_loss_fails_one_unit(
    engine: sa.Engine, ticks: Ticks, postgres: PostgresServer
) -> None:
    first = backend(engine)
    assert end_backends(postgres) == 1
    ticks.now += 0.5  # within the window: no round trip before use
    with pytest.raises(sa.exc.OperationalError) as failed:
        backend(engine)
    assert failed.value.connection_invalidated
    assert backend(engine) != first  # the next unit has a new connection


def test_a_connection_still_there_is_kept_whether_checked_or_not(engine: sa.Engine, ticks: Ticks) -> None:
    first = backend(engine)
    ticks.now += 0.5
    assert backend(engine) == first
    ticks.now += 5.0
    assert backend(engine) == first


def test_the_service_engine_does_not_ping_a_connection_just_used(url: str, postgres: PostgresServer) -> None:
    """Its loss shows in the next unit (which rolls back), not in a ping before it: no round trip
    precedes a unit of work that follows another at once."""
    engine = make_engine(url)
    try:
        first = backend(engine)
        assert end_backends(postgres) >= 1
        with pytest.raises(sa.exc.OperationalError):
            backend(engine)
        assert backend(engine) != first
    finally:
        engine.dispose()
