"""Rate limits: sign-in attempts per address (Flask-Limiter), and Twilio's webhooks per sender
address (`AddressLimit`, on the `limits` package Flask-Limiter is built on).

Counts are per process (in memory); behind several workers the effective limit
is that many times higher, which still stops a flood. Refused sign-ins are also counted
in the database (`signins.too_many_failures`), a limit every worker shares.
"""

from __future__ import annotations

import time
from functools import lru_cache

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter


class SweepingMemoryStorage(MemoryStorage):
    """limits' in-memory storage, minus its timer threads.

    The stock one starts a timer thread (to drop expired counts) when it is made and on nearly
    every hit when requests are more than 10 ms apart. A count is checked against its expiry
    whenever it is read, so the sweep only frees memory: here it runs in the request itself, at
    most once a second, and the timer the base class starts is stopped at once (a thread left
    waiting would also hold up the process's exit).
    """

    STORAGE_SCHEME = ["assistant-memory"]  # noqa: RUF012 (how limits names its storages)
    _next_sweep = 0.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.timer.cancel()

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the base class's private hook
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + 1.0
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


limiter = Limiter(
    key_func=get_remote_address, storage_uri="assistant-memory://", default_limits=[], headers_enabled=False
)
SIGN_IN = "10 per minute"


class AddressLimit:
    """One limit a client address, counted in this process, for the webhooks Twilio calls.

    Flask-Limiter's own check resolves a blueprint's limits, exemptions and scopes on every
    request, a fifth of what a refused webhook request costs; Twilio's endpoints need one
    fixed-window count by address, the same strategy Flask-Limiter uses by default."""

    def __init__(self) -> None:
        self._counts = FixedWindowRateLimiter(SweepingMemoryStorage("assistant-memory://"))

    def hit(self, limit: str, scope: str, address: str) -> bool:
        """Count one request; False when `address` has gone past `limit` ("3000 per minute") in `scope`."""
        return self._counts.hit(_parsed(limit), scope, address)


@lru_cache(maxsize=8)
def _parsed(limit: str) -> RateLimitItem:
    return parse(limit)
