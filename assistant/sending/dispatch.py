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

# Texts waiting to be sent are taken together up to about this many (well below a send's limit).
BATCH_UP_TO = 100


class Dispatcher:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.mode = rt.settings.dispatch
        self._queue: queue.Queue[tuple[list[int], bool, list[outbox.Booked]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def sends(self) -> bool:
        """Whether kicked texts go at once: only then may a unit claim its texts for this dispatcher."""
        return self.mode != "off"

    def kick(self, ids: list[int], *, emails: bool = False, booked: list[outbox.Booked] | None = None) -> None:
        """Send these outbox messages (and any queued emails) now that their transaction committed.
        `booked`: those of them the unit claimed already (`sender.claim_in_unit`), sent first."""
        booked = booked or []
        if not (ids or emails) or self.mode == "off":
            outbox.release(self.rt, booked)  # nobody sends them here: back in the queue for the tick
            return
        if self.mode == "inline":
            self._send(ids, emails, booked)
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="outbox-dispatch", daemon=True)
                self._thread.start()
        self._queue.put((ids, emails, booked))

    def _send(self, ids: list[int], emails: bool, booked: list[outbox.Booked] | None = None) -> None:
        now = self.rt.clock.now()
        failed = 0
        for attempt in (1, 2):
            # A pass can fail part-way (a lock that timed out) with other people's texts in it: it
            # is tried once more, which takes only what is still queued. Then the scheduler's turn.
            try:
                failed = outbox.send_due(self.rt, now, only=ids, booked=booked).failed if ids else 0
                break
            except Exception:
                log.exception("post-commit send failed (pass %s of 2)", attempt)
                booked = None  # the failed pass put back what it had not sent
                failed = 1  # whatever failed, any email waiting goes now
        if emails or failed:  # a refused crisis reply tells people at once, by email too
            try:
                send_notifications(self.rt, now)
            except Exception:  # the scheduler will pick them up
                log.exception("post-commit email failed")

    def _run(self) -> None:
        while True:
            self._send(*self._with_waiting(*self._queue.get()))

    def _with_waiting(
        self, ids: list[int], emails: bool, booked: list[outbox.Booked]
    ) -> tuple[list[int], bool, list[outbox.Booked]]:
        """These, and whatever else was kicked while the last send went, in one pass: texts the
        units claimed already go one after another and their results are recorded together, so a
        backlog costs one transaction, not one a text."""
        ids, booked = list(ids), list(booked)
        while len(ids) < BATCH_UP_TO:
            try:
                more, more_emails, more_booked = self._queue.get_nowait()
            except queue.Empty:
                break
            ids += more
            booked += more_booked
            emails = emails or more_emails
        return ids, emails, booked
