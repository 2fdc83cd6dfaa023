"""SQLite: writers to one database file take turns through a lock file beside it.

Every transaction here is BEGIN IMMEDIATE, so writers queue for the database's write lock. SQLite
itself only polls for that lock, sleeping 1, 2, 5, 10 ms and longer between tries, so a waiting
worker often sleeps on while the lock sits free: a second web worker added no throughput, and at a
steady 200 texts a second answers waited over a second. Waiting for an flock on a file beside the
database instead, the next writer goes the moment the last one commits. It is only the queue: the
lock that keeps the data safe is still SQLite's own, taken by BEGIN IMMEDIATE after the turn.

Within one process, writers (a web worker's request and its sending thread) first queue for a token
of the process's own, so at most one of them per process looks for the file's lock: the others
wait without waking."""

from __future__ import annotations

import fcntl
import logging
import os
import select
import sqlite3
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

# How often a writer looks for its turn while another holds it: far below a transaction's length.
_LOOK_EVERY = 0.0002


class _ProcessQueue:
    """This process's queue for one lock file: a single token in a pipe. The thread that reads it is
    the one that looks for the file's lock; the others wait in select() until it is written back.
    (A pipe, not a threading.Lock: a lock's timed wait runs to an absolute deadline on the
    monotonic clock, which a shifted clock, as under faketime in the tests, turns into a year.)"""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.write(self._write, b".")

    def take(self, within: float) -> bool:
        deadline = time.monotonic() + within
        while True:
            try:
                os.read(self._read, 1)
                return True
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                select.select([self._read], [], [], remaining)

    def give_back(self) -> None:
        os.write(self._write, b".")

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


_in_process: dict[str, _ProcessQueue] = {}
_in_process_guard = threading.Lock()
# This process's id, kept up to date over a fork: asked of the kernel it is a system call, and
# every transaction asks it three times.
_pid = os.getpid()


def _process_queue(turns_path: str) -> _ProcessQueue:
    with _in_process_guard:
        if turns_path not in _in_process:
            _in_process[turns_path] = _ProcessQueue()
        return _in_process[turns_path]


def _fresh_queues_after_fork() -> None:
    # The pipes are shared with the parent, and a thread of the parent may hold a token: the child
    # starts with queues of its own, every one free.
    global _in_process_guard, _pid
    _pid = os.getpid()
    for queue in _in_process.values():
        queue.close()
    _in_process.clear()
    _in_process_guard = threading.Lock()


os.register_at_fork(after_in_child=_fresh_queues_after_fork)


class TurnTakingConnection(sqlite3.Connection):
    """A SQLite connection that holds the writers' turn from `take_turn` until it commits, rolls
    back or closes. Made by sqlite3.connect(factory=...), given `turns` (the lock file's path)."""

    turns_path: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turn_fd: int | None = None
        self._turn_pid = _pid
        self._holding = False
        self._queued: _ProcessQueue | None = None  # this process's queue, while this connection holds its token

    def take_turn(self, within: float) -> bool:
        """Wait up to `within` seconds for the writers' turn; False if it did not come in time."""
        if self.turns_path is None:
            return True
        if self._turn_fd is not None and self._turn_pid != _pid:
            # Inherited over a fork: that descriptor is shared with the parent and so is its lock.
            os.close(self._turn_fd)
            self._turn_fd, self._holding, self._queued = None, False, None
        if self._turn_fd is None:
            self._turn_pid = _pid
            try:  # flock needs only read access: anyone who may use the database may queue
                self._turn_fd = os.open(self.turns_path, os.O_RDONLY | os.O_CREAT, 0o644)
            except OSError as exc:
                return self._without_turns(exc)
        deadline = time.monotonic() + within
        queue = _process_queue(self.turns_path)
        if not queue.take(within):
            return False
        self._queued = queue
        while True:
            try:
                fcntl.flock(self._turn_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._holding = True
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self._leave_queue()
                    return False
                time.sleep(_LOOK_EVERY)
            except OSError as exc:  # a file system without flock (some network ones)
                self._leave_queue()
                return self._without_turns(exc)

    def _leave_queue(self) -> None:
        queue, self._queued = self._queued, None
        # Inherited over a fork, the token is the parent's and the child has closed its pipe.
        if queue is not None and self._turn_pid == _pid:
            queue.give_back()

    def _without_turns(self, exc: OSError) -> bool:
        log.warning("SQLite writers' turns unavailable (%s): waiting on SQLite's own lock", exc)
        self.turns_path = None
        return True

    def end_turn(self) -> None:
        # Inherited over a fork, the descriptor's lock is the parent's: never release it from here.
        if self._holding and self._turn_fd is not None and self._turn_pid == _pid:
            fcntl.flock(self._turn_fd, fcntl.LOCK_UN)
        self._holding = False
        self._leave_queue()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.end_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.end_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.end_turn()
            if self._turn_fd is not None:
                os.close(self._turn_fd)
                self._turn_fd = None


def connection_factory(database_path: str) -> type[TurnTakingConnection]:
    """The connection class for this database file: its turns are taken on `<file>-turns`."""
    return type("TurnTakingConnection", (TurnTakingConnection,), {"turns_path": database_path + "-turns"})
