"""Database engine, units of work (a transaction, a participant's unit, what a unit queued for after
commit) and row locks, for SQLite and PostgreSQL alike."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

from assistant.db import writer_turns
from assistant.db.driver import Prepared
from assistant.db.idle_ping import ping_when_idle
from assistant.db.models import Participant, table
from assistant.db.rows import as_loaded
from assistant.db.service_settings import SETTINGS_KEY, remember_settings, settings_text_of
from assistant.db.signers import SIGNER_COLUMNS, SIGNER_JOIN, keep_signer

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


# Without settings (migrations, one-off scripts) a lock is waited for this long on SQLite; PostgreSQL
# then has no lock or statement timeout of its own.
DEFAULT_SQLITE_BUSY_SECONDS = 30.0


def make_engine(url: str, *, lock_timeout: float | None = None, statement_timeout: float | None = None) -> sa.Engine:
    """An engine whose transactions give up on a held lock after `lock_timeout` seconds and on a
    statement after `statement_timeout` (PostgreSQL), with an OperationalError: the web app answers
    that with 503 and rolls back, so nothing is kept half and Twilio's retry is recorded once."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url, lock_timeout or DEFAULT_SQLITE_BUSY_SECONDS)
    connect_args: dict[str, Any] = {}
    options = [
        f"-c {name}={int(seconds * 1000)}"
        for name, seconds in (("lock_timeout", lock_timeout), ("statement_timeout", statement_timeout))
        if seconds
    ]
    if options:
        given = sa.make_url(url).query.get("options")
        connect_args["options"] = " ".join([*([given] if isinstance(given, str) else list(given or ())), *options])
    engine = sa.create_engine(url, pool_size=5, max_overflow=5, connect_args=connect_args)
    ping_when_idle(engine)
    return engine


WAL_CHECKPOINT_PAGES = 4000


def _sqlite_engine(url: str, busy_seconds: float) -> sa.Engine:
    memory = url in ("sqlite://", "sqlite:///:memory:")
    if not memory:
        path = sa.make_url(url).database
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": busy_seconds}
    kwargs: dict[str, Any] = {"connect_args": connect_args}
    if memory:
        kwargs["poolclass"] = StaticPool
    elif path:
        connect_args["factory"] = writer_turns.connection_factory(str(Path(path).resolve()))
    engine = sa.create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy issue BEGIN itself, so every transaction can be IMMEDIATE:
        # writers queue on the database lock instead of failing mid-transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_seconds * 1000)}")
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # The commit that takes the log past this many pages copies it back into the database
            # and syncs: at SQLite's 1,000 that was one commit in eighty, and the same hot pages were
            # copied again and again. 4,000 pages (16 MB of log) copy each once per longer spell.
            cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        dbapi_connection = connection.connection.dbapi_connection
        turns = dbapi_connection if isinstance(dbapi_connection, writer_turns.TurnTakingConnection) else None
        if turns is None or turns.take_turn(within=busy_seconds):
            try:
                _begin_immediate(dbapi_connection)
            except BaseException:
                if turns is not None:
                    turns.end_turn()
                raise
            return
        # The lock timeout has gone by waiting for the turn: one last try, failing at once if busy.
        connection.exec_driver_sql("PRAGMA busy_timeout=0")
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        finally:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={int(busy_seconds * 1000)}")

    return engine


def _begin_immediate(dbapi_connection: Any) -> None:
    """BEGIN IMMEDIATE on the driver itself: every unit of work begins so, and SQLAlchemy's way of
    running a statement cost several times the statement. Its errors are SQLAlchemy's, as they
    would be from the engine (OperationalError when the database is locked)."""
    try:
        dbapi_connection.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as error:
        raise sa.exc.DBAPIError.instance("BEGIN IMMEDIATE", (), error, sqlite3.Error) from error


@dataclass
class Queued:
    """What a unit of work queued to go out the moment it commits, besides the replies it returns:
    texts to staff (a duty contact's alert) and whether any email waits (an urgent flag's notice)."""

    texts: list[int] = field(default_factory=list)
    emails: bool = False


class Unit(Session):
    """The session of one unit of work, holding what it queued for after commit (`queued`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queued = Queued()


def queued(db: Session) -> Queued:
    """What this unit of work has queued so far to go after commit."""
    if not isinstance(db, Unit):
        raise TypeError("texts and email to send after commit are queued only in a unit of work (transaction)")
    return db.queued


class _Shared:
    """One pooled connection that the units of work of a run on one thread take in turn, each in
    its own transaction: taking a connection from the pool and giving it back cost a third of a
    unit that runs one statement, and the clock's tick runs hundreds of units."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.connection: sa.Connection | None = None

    def bind_for(self, engine: sa.Engine) -> sa.Engine | sa.Connection:
        if engine is not self.engine:
            return engine
        if self.connection is not None and (self.connection.closed or self.connection.invalidated):
            self.connection.close()
            self.connection = None
        if self.connection is None:
            # Taken at the first unit, not before: a database that is down fails that unit, as it would alone.
            self.connection = engine.connect()
        if self.connection.in_transaction():
            return engine  # a unit begun inside another (never on SQLite) has a connection of its own, as before
        return self.connection

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()  # back to the pool, whose reset ends anything left open


_shared: ContextVar[_Shared | None] = ContextVar("shared_connection", default=None)


@contextmanager
def shared_connection(engine: sa.Engine) -> Iterator[None]:
    """Units of work on this thread within the block take one pooled connection in turn, each unit
    still its own transaction, committed or rolled back before the next begins. For a run of many
    units (the clock's tick); outside it, each unit takes a connection of its own."""
    if _shared.get() is not None:
        yield
        return
    shared = _Shared(engine)
    token = _shared.set(shared)
    try:
        yield
    finally:
        _shared.reset(token)
        shared.close()


@contextmanager
def transaction(engine: sa.Engine) -> Iterator[Unit]:
    """One unit of work: commits on success, rolls back on any error."""
    shared = _shared.get()
    with Unit(engine if shared is None else shared.bind_for(engine), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# Built once: building a statement costs more than running it on an indexed column. FOR UPDATE
# is PostgreSQL's row lock; SQLite leaves it out (its transaction holds the write lock already).
_participant = table(Participant)
# Their service's settings and who signs their texts come with them (nearly every unit about them
# reads both: a reply, a check-in, a timeout), costing no statement of their own. Only the
# participant's row is locked.
_LOCK_BY_ID = Prepared(
    sa.select(_participant, settings_text_of(_participant.c.service_id).label(SETTINGS_KEY), *SIGNER_COLUMNS)
    .select_from(SIGNER_JOIN)
    .where(_participant.c.id == sa.bindparam("key"))
    .with_for_update(of=_participant)
)
# The same, for a text from their phone.
_LOCK_BY_PHONE = Prepared(
    sa.select(_participant, settings_text_of(_participant.c.service_id).label(SETTINGS_KEY), *SIGNER_COLUMNS)
    .select_from(SIGNER_JOIN)
    .where(_participant.c.phone == sa.bindparam("key"))
    .with_for_update(of=_participant)
)


def lock_participant(session: Session, participant_id: int) -> Participant | None:
    """Take the participant's row lock so their messages are handled one at a time.

    PostgreSQL: SELECT ... FOR UPDATE. SQLite: the transaction already holds the
    database write lock (BEGIN IMMEDIATE).
    """
    return _loaded_with_settings(session, _LOCK_BY_ID.run(session, {"key": participant_id}).first())


@contextmanager
def participant_unit(engine: sa.Engine, participant_id: int) -> Iterator[tuple[Unit, Participant | None]]:
    """One unit of work about one participant: the transaction, with their lock taken first, before
    anything of theirs is read. Yields the session and the participant (None if there is no such row)."""
    with transaction(engine) as db:
        yield db, lock_participant(db, participant_id)


def lock_participant_by_phone(session: Session, phone: str) -> Participant | None:
    """lock_participant, finding them by their phone number."""
    return _loaded_with_settings(session, _LOCK_BY_PHONE.run(session, {"key": phone}).first())


def _loaded_with_settings(session: Session, row: Any) -> Participant | None:
    """The locked row as the session's participant; their service's settings and their texts' signer,
    read with it, kept for `for_service` and `signer` so they ask the database no more in this transaction."""
    if row is None:
        return None
    values = row._asdict()
    settings = values.pop(SETTINGS_KEY)
    keep_signer(session, values)
    participant = as_loaded(session, Participant, values)
    remember_settings(session, participant.service_id, settings)
    return participant


# The INSERT that can say what to do on a conflict, by database: SQLite and PostgreSQL spell it the same way.
INSERT_OR: dict[str, Callable[[sa.Table], Any]] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def insert_or(session: Session, table: sa.Table) -> Any:
    """An INSERT that can say what to do on a conflict (`on_conflict_do_nothing`/`_do_update`),
    in the dialect of the session's database."""
    name = session.get_bind().dialect.name
    return INSERT_OR["postgresql" if name == "postgresql" else "sqlite"](table)


def upgrade(url: str) -> None:
    """Bring the schema to the latest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


def among(session: Session, column: Any, ids: Collection[Any], of: type[sa.types.TypeEngine[Any]] = sa.Integer) -> Any:
    """`column IN (ids)` for a batch of ids (integers, or values `of` another type). PostgreSQL gets
    them as one array parameter: a thousand ids written into the SQL make a statement the driver
    parses afresh and the server plans afresh every time (a third of queueing a large campaign)."""
    return among_param(column, None, session.get_bind().dialect.name, ids, of)


def one_of(column: Any, values: Collection[Any]) -> Any:
    """`column IN (values)` for a fixed set written into a statement built once. Each value is its
    own plain parameter: a list given to `in_` is expanded into the SQL afresh on every run, which
    cost statements on every text more than the database took to run them."""
    return column.in_([sa.literal(value, column.type) for value in sorted(values)])


def among_param(
    column: Any,
    name: str | None,
    dialect: str,
    ids: Collection[Any] | None = None,
    of: type[sa.types.TypeEngine[Any]] = sa.Integer,
) -> Any:
    """`among` for a statement built once per database: the ids are given later as `name`, one
    parameter whatever their number (an array on PostgreSQL, a JSON list read by `json_each` on SQLite),
    so the statement's SQL is the same on every run and stays in the caches."""
    value = None if ids is None else list(ids)
    if dialect == "postgresql":
        return column == sa.any_(sa.bindparam(name, value, type_=postgresql.ARRAY(of)))
    listed = sa.func.json_each(sa.bindparam(name, value, type_=sa.JSON)).table_valued("value")
    return column.in_(sa.select(listed.c.value))
