"""Sending pace shared by every process: never more segments a second than the numbers can send.

Each send reserves its slot on one database row per sending pool (the next moment a
segment may leave), under the row's lock, then waits for that moment. Web workers'
replies and every scheduler's batches queue on the same row, so however many
processes send, together they stay within the rate, and no second gets a burst.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from .db import transaction
from .models import SendPace
from .runtime import Runtime

POOL = "sms"


class Pacer:
    """Reserves send slots at `rate` segments a second on the shared row for `pool`."""

    def __init__(
        self,
        engine: sa.Engine,
        rate: float,
        *,
        pool: str = POOL,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine, self.rate, self.pool = engine, rate, pool
        self.clock, self.sleep = clock, sleep
        self.lock = threading.Lock()  # this process's threads take their turn before the row's lock
        self._ensure_row()

    def _insert_row(self) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(SendPace).values(pool=self.pool, next_at=0.0).on_conflict_do_nothing()

    def _ensure_row(self) -> None:
        with transaction(self.engine) as db:
            db.execute(self._insert_row())

    def reserve(self, db: Session, segments: int) -> float:
        """Book the next slot for `segments` in the caller's transaction; the moment it starts.

        The row stays locked until that transaction ends, so call it last before committing."""
        next_at = db.execute(_ROW.with_for_update(), {"b_pool": self.pool}).scalar_one_or_none()
        if next_at is None:  # the row went (a restore, say): start the pace again from now
            db.execute(self._insert_row())
            next_at = db.execute(_ROW.with_for_update(), {"b_pool": self.pool}).scalar_one()
        start = max(self.clock(), float(next_at))
        # A microsecond over, so rounding never lets one more in under the second.
        db.execute(_BOOK, {"b_pool": self.pool, "b_next_at": start + max(1, segments) / self.rate + 1e-6})
        return start

    def wait_for(self, start: float) -> None:
        wait = start - self.clock()
        if wait > 0:
            self.sleep(wait)

    def take(self, segments: int) -> None:
        """Wait until `segments` may leave without any process going over the rate."""
        with self.lock:
            with transaction(self.engine) as db:
                start = self.reserve(db, segments)
            self.wait_for(start)


_PACE = SendPace.__table__  # type: ignore[attr-defined]
_ROW = sa.select(_PACE.c.next_at).where(_PACE.c.pool == sa.bindparam("b_pool"))
_BOOK = sa.update(_PACE).where(_PACE.c.pool == sa.bindparam("b_pool")).values(next_at=sa.bindparam("b_next_at"))


_pacers: dict[int, Pacer] = {}
_made = threading.Lock()


def pacer_for(rt: Runtime) -> Pacer:
    """The shared pace for this runtime's senders: the rate per number times the numbers."""
    key = id(rt)
    with _made:
        if key not in _pacers:
            senders = max(1, getattr(rt.transport, "senders", 1))
            _pacers[key] = Pacer(rt.engine, rt.settings.send_rate * senders)
        return _pacers[key]
