"""Sending pace shared by every process: never more segments a second than the numbers can send.

Each send reserves its slot on one database row per sending pool (the next moment a
segment may leave), under the row's lock, then waits for that moment. Web workers'
replies and every scheduler's batches queue on the same row, so however many
processes send, together they stay within the rate, and no second gets a burst.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlmodel import Session

from assistant.db.driver import Prepared
from assistant.db.models import SendPace
from assistant.db.units import insert_or

POOL = "sms"


class Pacer:
    """Books send slots at `rate` segments a second on the shared row for `pool`.

    It holds no state of its own (the pace is in the database), so one can be made per batch."""

    def __init__(
        self,
        rate: float,
        *,
        pool: str = POOL,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate, self.pool = rate, pool
        self.clock, self.sleep = clock, sleep

    def reserve(self, db: Session, segments: int) -> float:
        """Book the next slot for `segments` in the caller's transaction; the moment it starts.

        The row stays locked until that transaction ends, so call it last before committing."""
        # A microsecond over, so rounding never lets one more in under the second.
        step = max(1, segments) / self.rate + 1e-6
        params = {"b_pool": self.pool, "b_now": self.clock(), "b_step": step}
        # One statement books the slot under the row's lock: later of now and the next free moment, plus the step.
        booked = _BOOK_NEXT.run(db, params).scalar_one_or_none()
        if booked is None:  # the first send, or the row went (a restore, say): the pace starts now
            db.execute(insert_or(db, _PACE).values(pool=self.pool, next_at=0.0).on_conflict_do_nothing())
            booked = _BOOK_NEXT.run(db, params).scalar_one()
        return float(booked) - step

    def wait_for(self, start: float) -> None:
        wait = start - self.clock()
        if wait > 0:
            self.sleep(wait)


_PACE = SendPace.__table__  # type: ignore[attr-defined]
_NOW = sa.bindparam("b_now", type_=sa.Float)
_BOOK_NEXT = Prepared(
    sa.update(_PACE)
    .where(_PACE.c.pool == sa.bindparam("b_pool"))
    .values(
        next_at=sa.case((_PACE.c.next_at > _NOW, _PACE.c.next_at), else_=_NOW) + sa.bindparam("b_step", type_=sa.Float)
    )
    .returning(_PACE.c.next_at)
)
