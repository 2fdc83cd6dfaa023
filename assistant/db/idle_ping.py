"""Pooled PostgreSQL connections are checked with a round trip only after they have sat idle."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

# A connection back in the pool for longer than this is pinged when next taken out; one used a
# moment ago is not. SQLAlchemy's pre-ping on every checkout was a round trip for each unit of
# work, two or three a text: a tenth of the web worker's time under load. A connection lost
# within this window fails its unit's first statement as a disconnect instead: the unit rolls
# back (the webhook answers 503 and Twilio retries), and the pool starts afresh.
PING_AFTER_IDLE_SECONDS = 1.0

_RETURNED_AT = "returned_at"  # in the connection record's info, which lives as long as the connection


def ping_when_idle(
    engine: sa.Engine,
    *,
    idle_seconds: float = PING_AFTER_IDLE_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Check `engine`'s pooled connections on checkout when idle longer than `idle_seconds`."""

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:
            record.info[_RETURNED_AT] = clock()

    @event.listens_for(engine, "checkout")
    def _taken(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get(_RETURNED_AT)
        if returned is None or clock() - returned < idle_seconds:
            return  # just made, or used a moment ago
        dialect = engine.dialect
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):  # type: ignore[arg-type]
                # As SQLAlchemy's own pre-ping: every connection made before now is replaced.
                raise sa.exc.InvalidatePoolError("connection lost while idle in the pool") from error
            raise
