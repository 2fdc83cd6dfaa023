"""SQLite writers take turns through a lock file: the turn is held for exactly one transaction,
a lock timeout still ends in the database's error (never a hang), and concurrent writers lose
nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from assistant.db.units import make_engine
from assistant.db.writer_turns import TurnTakingConnection


def _turns(engine: sa.Engine) -> TurnTakingConnection:
    """A connection of this engine's own, outside its pool, to look at the turn with."""
    raw = engine.raw_connection().dbapi_connection
    assert isinstance(raw, TurnTakingConnection)
    return raw


def _one_write_lands(path: Path) -> None:
    """A write through a new engine commits, and is there to read after."""
    engine = make_engine(f"sqlite:///{path}", lock_timeout=5)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE counter SET n = n + 1")
    with engine.begin() as connection:
        assert connection.exec_driver_sql("SELECT n FROM counter").scalar() == 1
    engine.dispose()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    database = tmp_path / "turns.db"
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE counter (n INTEGER NOT NULL)")
        connection.exec_driver_sql("INSERT INTO counter VALUES (0)")
    engine.dispose()
    return database


def test_a_transaction_holds_the_turn_until_it_commits_or_rolls_back(path: Path) -> None:
    engine = make_engine(f"sqlite:///{path}", lock_timeout=5)
    other = _turns(make_engine(f"sqlite:///{path}", lock_timeout=5))
    with engine.connect() as connection:
        connection.begin()
        assert not other.take_turn(within=0.05), "another writer got the turn mid-transaction"
        connection.commit()
        assert other.take_turn(within=0.05), "the turn was not given back at commit"
        other.end_turn()
        connection.begin()
        assert not other.take_turn(within=0.05)
        connection.rollback()
        assert other.take_turn(within=0.05), "the turn was not given back at rollback"
        other.end_turn()
    engine.dispose()


def test_a_turn_that_never_comes_ends_in_the_database_lock_error_not_a_hang(path: Path) -> None:
    holder = make_engine(f"sqlite:///{path}", lock_timeout=5)
    waiter = make_engine(f"sqlite:///{path}", lock_timeout=0.3)
    with holder.connect() as held:
        held.begin()
        held.exec_driver_sql("UPDATE counter SET n = n + 1")
        with pytest.raises(sa.exc.OperationalError, match="locked"), waiter.begin() as connection:
            connection.exec_driver_sql("UPDATE counter SET n = n + 100")
        held.commit()
    with waiter.begin() as connection:  # and the waiter's next transaction goes through
        assert connection.exec_driver_sql("SELECT n FROM counter").scalar() == 1
    holder.dispose()
    waiter.dispose()


def test_a_failed_begin_gives_the_turn_back(path: Path) -> None:
    import sqlite3

    engine = make_engine(f"sqlite:///{path}", lock_timeout=0.2)
    other = _turns(make_engine(f"sqlite:///{path}"))
    outsider = sqlite3.connect(path, isolation_level=None)  # holds SQLite's lock without taking a turn
    outsider.execute("BEGIN EXCLUSIVE")
    with engine.connect() as connection:
        with pytest.raises(sa.exc.OperationalError):
            connection.begin()
        # Still checked out, so the pool has not rolled it back: the turn must already be free.
        assert other.take_turn(within=0.05), "the failed BEGIN kept the turn"
        other.end_turn()
    outsider.execute("ROLLBACK")
    outsider.close()
    engine.dispose()


def test_a_file_system_without_flock_falls_back_to_sqlites_own_lock(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import fcntl

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    _one_write_lands(path)


def test_writers_in_threads_and_engines_lose_no_write(path: Path) -> None:
    engines = [make_engine(f"sqlite:///{path}", lock_timeout=30) for _ in range(3)]
    rounds = 60

    def add(engine: sa.Engine) -> None:
        for _ in range(rounds):
            with engine.begin() as connection:
                n = connection.exec_driver_sql("SELECT n FROM counter").scalar_one()
                connection.exec_driver_sql("UPDATE counter SET n = ?", (n + 1,))

    threads = [threading.Thread(target=add, args=(engine,)) for engine in engines for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    with engines[0].begin() as connection:
        assert connection.exec_driver_sql("SELECT n FROM counter").scalar() == rounds * len(threads)
    for engine in engines:
        engine.dispose()


def test_an_in_memory_database_takes_no_turns() -> None:
    engine = make_engine("sqlite://")
    with engine.begin() as connection:
        assert connection.exec_driver_sql("SELECT 1").scalar() == 1
        assert not isinstance(connection.connection.dbapi_connection, TurnTakingConnection)
    engine.dispose()


def test_without_the_turns_file_writers_still_write_on_sqlites_own_lock(path: Path) -> None:
    turns = path.parent / "turns.db-turns"
    turns.unlink(missing_ok=True)
    turns.mkdir()  # a directory where the lock file should be: it cannot be opened
    _one_write_lands(path)


def test_a_connection_inherited_over_a_fork_does_not_share_the_parents_turn(path: Path) -> None:
    import os

    parent = _turns(make_engine(f"sqlite:///{path}"))
    assert parent.take_turn(within=0.05)
    child = os.fork()
    if child == 0:
        # The parent holds the turn: the child must not get it through the same descriptor, and
        # ending "its" turn (a rollback, a close) must not release the parent's.
        parent.rollback()
        got = parent.take_turn(within=0.05)
        os._exit(0 if not got else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the forked child got the turn its parent held"
    assert not _file_lock_free(path), "the child released the parent's turn"
    parent.end_turn()


def _file_lock_free(path: Path) -> bool:
    """The turns file's lock can be had right now (looked at through a descriptor of our own)."""
    import fcntl
    import os

    fd = os.open(f"{path}-turns", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_a_writer_waiting_in_the_same_process_queues_without_looking_at_the_file(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    holder = _turns(make_engine(f"sqlite:///{path}"))
    waiter = _turns(make_engine(f"sqlite:///{path}"))
    assert holder.take_turn(within=0.05)
    looked: list[int] = []
    real_flock = fcntl.flock

    def counted(fd: int, operation: int) -> None:
        looked.append(operation)
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", counted)
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(waiter.take_turn(within=0.1)))
    thread.start()
    thread.join(timeout=10)
    assert result == [False], "a writer in the same process got the turn while another held it"
    assert looked == [], "the waiting writer polled the lock file instead of queueing in its process"
    holder.end_turn()
    assert waiter.take_turn(within=0.05), "the turn was not passed on within the process"
    assert not _file_lock_free(path), "the turn within the process did not take the file's lock"
    waiter.end_turn()
    assert _file_lock_free(path)


def test_a_forked_child_starts_with_its_process_queue_free(path: Path) -> None:
    import os

    from assistant.db.writer_turns import _process_queue

    queue = _process_queue(f"{path.resolve()}-turns")
    assert queue.take(within=1)  # a thread of this process mid-way through taking a turn
    try:
        child = os.fork()
        if child == 0:
            got = _turns(make_engine(f"sqlite:///{path}")).take_turn(within=1)
            os._exit(0 if got else 1)
        _, status = os.waitpid(child, 0)
    finally:
        queue.give_back()
    assert os.waitstatus_to_exitcode(status) == 0, "the child inherited a queue held by a thread it does not have"


def test_a_database_files_connections_log_ahead_and_copy_the_log_back_in_long_spells(path: Path) -> None:
    from assistant.db.units import WAL_CHECKPOINT_PAGES

    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WAL_CHECKPOINT_PAGES
    assert WAL_CHECKPOINT_PAGES > 1000  # SQLite's own default
    engine.dispose()
