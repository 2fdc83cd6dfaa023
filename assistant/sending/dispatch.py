"""Post-commit sending: replies leave within moments, without waiting for the next tick.

If this process dies before sending, the rows are still queued in the outbox and
the scheduler's next tick sends them; the claim step stops anything going twice.
"""

from __future__ import annotations

import logging
import queue
import threading

from assistant.care.mail import send_notifications
from assistant.runtime import Runtime
from assistant.sending import sender as outbox

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.mode = rt.settings.dispatch
        self._queue: queue.Queue[tuple[list[int], bool]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def kick(self, ids: list[int], *, emails: bool = False) -> None:
        """Send these outbox messages (and any queued emails) now that their transaction committed."""
        if not (ids or emails) or self.mode == "off":
            return
        if self.mode == "inline":
            self._send(ids, emails)
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="outbox-dispatch", daemon=True)
                self._thread.start()
        self._queue.put((ids, emails))

    def _send(self, ids: list[int], emails: bool) -> None:
        try:
            now = self.rt.clock.now()
            failed = outbox.send_due(self.rt, now, only=ids).failed if ids else 0
            if emails or failed:  # a refused crisis reply tells people at once, by email too
                send_notifications(self.rt, now)
        except Exception:  # the scheduler will pick the rows up
            log.exception("post-commit send failed")

    def _run(self) -> None:
        while True:
            ids, emails = self._queue.get()
            self._send(ids, emails)
