"""Core statements built once, run straight on the database driver in the session's transaction.

Through the session a statement costs about 25 us of SQLAlchemy's Python against 2-5 us for the
database to run it (measured on SQLite), and the paths every text takes run some twenty. Here a
statement is compiled once per database, and each run only converts its parameters and results
with the same column types SQLAlchemy would use. Errors are SQLAlchemy's own, as from the session:
callers that answer a stalled database with 503 see the same OperationalError."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None

_INFO_KEY = "driver_connection"


@dataclass(frozen=True)
class _Compiled:
    sql: str
    order: tuple[str, ...] | None  # the parameters' order for a positional driver (SQLite), else named
    fixed: Mapping[str, Any]  # values written into the statement (literals), by their compiled name
    names: Mapping[str, str]  # a caller's key -> its compiled name
    binds: Mapping[str, Processor]  # compiled name -> the conversion to the driver's value
    converting: tuple[tuple[str, Callable[[Any], Any]], ...]  # those of `binds` that convert at all
    types: tuple[Any, ...]  # the result columns' types
    row: Any  # a named tuple of the result's columns, read by name or position


class Rows:
    """A statement's result rows, read once."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount  # rows the statement changed (UPDATE, DELETE)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)

    def all(self) -> list[Any]:
        return self.rows

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def one(self) -> Any:
        if len(self.rows) != 1:
            raise sa.exc.NoResultFound("no row was found") if not self.rows else sa.exc.MultipleResultsFound()
        return self.rows[0]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        if len(self.rows) > 1:
            raise sa.exc.MultipleResultsFound()
        return self.rows[0][0] if self.rows else None

    def scalars(self) -> list[Any]:
        return [row[0] for row in self.rows]


class Prepared:
    """A Core statement (no ORM entities, no expanding IN) to run many times on the driver."""

    def __init__(self, statement: sa.ClauseElement) -> None:
        self.statement = statement
        self._by_dialect: dict[str, _Compiled] = {}
        # Results' conversions, by database: made at the first run, from the driver's own column types;
        # (the column's position, its conversion) for the columns that have one.
        self._results: dict[str, tuple[tuple[int, Callable[[Any], Any]], ...]] = {}

    def run(self, db: Session, params: Mapping[str, Any] | None = None, *, flush: bool = True) -> Rows:
        """Run it in the session's transaction. `flush=False`: the session's unwritten changes cannot
        touch what this reads, so they wait (the caller has said why)."""
        if flush and db.autoflush:
            db.flush()  # as the session would before a statement: a no-op when nothing is pending
        connection = _driver_connection(db)
        dialect = db.get_bind().dialect
        try:
            return self._execute(connection, dialect, params)
        except _Failed as failed:
            raise _wrapped(db, dialect, failed) from failed.error

    def read(self, engine: sa.Engine, params: Mapping[str, Any] | None = None) -> Rows:
        """Run a statement that only reads on a pooled connection of its own, outside any unit of
        work: on SQLite it waits for no writer's turn and takes no write lock (a reader never waits
        in WAL mode). For "what is due" lookups whose rows are each claimed, and checked again, in
        a unit of work of their own: the clock asks about a dozen on every tick, and most find nothing."""
        pooled = engine.raw_connection()
        try:
            return self._execute(pooled.driver_connection, engine.dialect, params)
        except _Failed as failed:
            lost = engine.dialect.is_disconnect(failed.error, pooled.dbapi_connection, failed.cursor)  # type: ignore[arg-type]
            if lost:
                pooled.invalidate(failed.error)
            raise _as_sqlalchemy_error(engine.dialect, failed, lost) from failed.error
        finally:
            pooled.close()  # back to the pool, whose reset on return ends any transaction the driver began

    def _execute(self, connection: Any, dialect: sa.Dialect, params: Mapping[str, Any] | None) -> Rows:
        """Run it on the driver's connection; a driver error comes out as `_Failed`."""
        compiled = self._by_dialect.get(dialect.name) or self._compile(dialect)
        values = dict(compiled.fixed)
        for key, value in (params or {}).items():
            values[compiled.names[key]] = value
        if len(values) != len(compiled.binds):
            raise ValueError(f"missing parameters: {sorted(set(compiled.binds) - set(values))}")
        for name, convert in compiled.converting:
            values[name] = convert(values[name])
        arguments: Sequence[Any] | Mapping[str, Any] = (
            values if compiled.order is None else tuple(values[name] for name in compiled.order)
        )
        cursor = connection.cursor()
        try:
            cursor.execute(compiled.sql, arguments)
            fetched = cursor.fetchall() if cursor.description is not None else []
            rowcount = cursor.rowcount
            converts = self._results.get(dialect.name)
            if converts is None and cursor.description is not None:
                made = [
                    kind.dialect_impl(dialect).result_processor(dialect, described[1])
                    for kind, described in zip(compiled.types, cursor.description, strict=True)
                ]
                converts = self._results[dialect.name] = tuple((i, c) for i, c in enumerate(made) if c is not None)
        except dialect.loaded_dbapi.Error as error:
            raise _Failed(compiled.sql, arguments, error, cursor) from error
        finally:
            cursor.close()
        make = compiled.row._make
        if not converts:
            return Rows([make(row) for row in fetched], rowcount)
        rows = []
        for row in fetched:
            values_out = list(row)
            for position, convert in converts:
                values_out[position] = convert(values_out[position])
            rows.append(make(values_out))
        return Rows(rows, rowcount)

    def _compile(self, dialect: sa.Dialect) -> _Compiled:
        compiled = cast(SQLCompiler, self.statement.compile(dialect=dialect))
        if compiled.literal_execute_params or compiled.post_compile_params or compiled.escaped_bind_names:
            raise ValueError("a prepared statement takes plain parameters only (no expanding IN)")
        names: dict[str, str] = {}
        fixed: dict[str, Any] = {}
        binds: dict[str, Processor] = {}
        for bind, name in compiled.bind_names.items():
            names[bind.key] = name
            if not bind.required:
                fixed[name] = bind.effective_value
            binds[name] = bind.type.dialect_impl(dialect).bind_processor(dialect)
        # Columns left out of an INSERT or UPDATE that have a default SQLAlchemy would give at each run.
        for column in [*compiled.insert_prefetch, *compiled.update_prefetch]:
            default = column.default if column in compiled.insert_prefetch else column.onupdate
            if default is None or not default.is_scalar:
                raise ValueError(f"{column.key}: a prepared statement takes only fixed defaults; give it a value")
            fixed[column.key] = default.arg  # type: ignore[attr-defined]
        # The result's columns as SQLAlchemy itself reads them: with the RETURNING it may add
        # unasked (PostgreSQL returns a new row's key).
        columns = [(str(keyname), kind) for keyname, _name, _objects, kind in compiled._result_columns]
        done = _Compiled(
            sql=str(compiled),
            order=tuple(compiled.positiontup) if compiled.positiontup is not None else None,
            fixed=fixed,
            names=names,
            binds=binds,
            converting=tuple((name, convert) for name, convert in binds.items() if convert is not None),
            types=tuple(kind for _key, kind in columns),
            row=namedtuple("Row", [key for key, _kind in columns], rename=True),  # type: ignore[misc]
        )
        self._by_dialect[dialect.name] = done
        return done


def _driver_connection(db: Session) -> Any:
    """The driver's connection of the session's transaction, beginning it if need be."""
    transaction = db.get_transaction()
    held = db.info.get(_INFO_KEY)
    if transaction is not None and held is not None and held[0] is transaction:
        return held[1]
    connection = db.connection().connection.driver_connection
    db.info[_INFO_KEY] = (db.get_transaction(), connection)
    return connection


class _Failed(Exception):
    """The driver's error on a statement, with what SQLAlchemy's own error needs to be made of it."""

    def __init__(self, sql: str, arguments: Any, error: Exception, cursor: Any) -> None:
        super().__init__(sql)
        self.sql, self.arguments, self.error, self.cursor = sql, arguments, error, cursor


def _wrapped(db: Session, dialect: sa.Dialect, failed: _Failed) -> Exception:
    """The driver's error as SQLAlchemy raises it (IntegrityError, OperationalError...); a lost
    connection is thrown away, as SQLAlchemy would, so the pool never hands it out again."""
    connection = db.connection()
    lost = dialect.is_disconnect(failed.error, connection.connection.dbapi_connection, failed.cursor)  # type: ignore[arg-type]
    if lost:
        connection.invalidate(failed.error)
    return _as_sqlalchemy_error(dialect, failed, lost)


def _as_sqlalchemy_error(dialect: sa.Dialect, failed: _Failed, lost: bool) -> Exception:
    return sa.exc.DBAPIError.instance(
        failed.sql,
        failed.arguments,
        failed.error,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=lost,
        dialect=dialect,
    )
