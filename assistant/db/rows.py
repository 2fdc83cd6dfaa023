"""Rows written or read at once, as one prebuilt statement, outside the ORM's unit of work: a
loaded object's changes, a new object, a new row never read back as an object, or a row read
to become the session's object.

On the paths every text takes, flushing one added or changed object cost several times its
statement (about 0.4 ms against 0.05 ms), and loading one through a query about twice its
statement. These write or read the row now and leave the session's copy as if it had been
loaded so: nothing is left for a later flush, and reads see it at once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Mapper
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlmodel import Session, SQLModel

from assistant.db.driver import Prepared
from assistant.db.models import table

Model = TypeVar("Model", bound=SQLModel)

# Built once per table and set of columns: building a statement costs more than running it.
_UPDATES: dict[tuple[str, tuple[str, ...]], Prepared] = {}
_ROW_INSERTS: dict[tuple[str, tuple[str, ...]], Prepared] = {}


def write_now(db: Session, obj: SQLModel, **values: Any) -> None:
    """Set these columns of a loaded object and write them to its row now (one UPDATE by its id).
    Changes made to its other columns the usual way are still written by the next flush."""
    row_id = getattr(obj, "id", None)
    if row_id is None or obj not in db:
        raise ValueError("write_now writes a row this session has loaded or written already")
    _update(type(obj), tuple(sorted(values))).run(
        db, {"row_id": row_id, **{f"v_{name}": value for name, value in values.items()}}
    )
    for name, value in values.items():
        set_committed_value(obj, name, value)


def write_row(db: Session, model: type[SQLModel], row_id: Any, **values: Any) -> None:
    """Write these columns of one row by its id now, with no object loaded for it (one UPDATE);
    the session's copy, if it has one, is read afresh where it is used next."""
    _update(model, tuple(sorted(values))).run(
        db, {"row_id": row_id, **{f"v_{name}": value for name, value in values.items()}}
    )
    expire_loaded(db, model, row_id)


def _update(model: type[SQLModel], columns: tuple[str, ...]) -> Prepared:
    key = (model.__name__, columns)
    statement = _UPDATES.get(key)
    if statement is None:
        rows = table(model)
        statement = _UPDATES[key] = Prepared(
            rows.update()
            .where(rows.c.id == sa.bindparam("row_id"))
            .values({name: sa.bindparam(f"v_{name}", type_=rows.c[name].type) for name in columns})
        )
    return statement


def add_now(db: Session, model: type[Model], **values: Any) -> Model:
    """A new row of these values, the model's defaults for the columns not given, written now (one
    INSERT, its id read back) and kept in the session as loaded, so later changes to it are written
    as usual. The object is not built through the model's constructor: that cost more than the
    INSERT on the paths every text takes. A column with neither a value nor a default is an error."""
    full = {name: make() for name, make in _defaults(model).items()} | values
    missing = sorted(_columns(model) - full.keys() - {"id"})
    if missing:
        raise ValueError(f"{model.__name__} needs {', '.join(missing)}")
    full["id"] = insert_row(db, table(model), {name: value for name, value in full.items() if name != "id"})
    return as_loaded(db, model, full)


def _defaults(model: type[SQLModel]) -> dict[str, Callable[[], Any]]:
    """Each column's default as the model's fields give it (a fresh one each time from a factory)."""
    found = _DEFAULTS.get(model)
    if found is None:
        found = {}
        for name in _columns(model):
            field = model.model_fields.get(name)
            if field is None:
                continue
            if field.default_factory is not None:
                found[name] = field.default_factory  # type: ignore[assignment]
            elif not field.is_required():
                found[name] = (lambda value: lambda: value)(field.default)
        _DEFAULTS[model] = found
    return found


_DEFAULTS: dict[type[SQLModel], dict[str, Callable[[], Any]]] = {}


def claim(db: Session, model: type[Model], row_id: Any) -> Model | None:
    """One row by its id, locked for this unit of work, as the session's object: None if there is
    none or, on PostgreSQL, another unit holds it (FOR UPDATE SKIP LOCKED; SQLite's transaction holds
    the write lock already). One statement per table, built once."""
    return first_row(db, model, _by_key(model, locked=True), {"row_id": row_id})


def _by_key(model: type[SQLModel], *, locked: bool) -> Prepared:
    """Every column of one row by its primary key (`row_id`), locked or not: built once per table."""
    statement = _BY_KEY.get((model, locked))
    if statement is None:
        rows = table(model)
        select = sa.select(rows).where(rows.c[_key_of(model)] == sa.bindparam("row_id"))
        statement = _BY_KEY[(model, locked)] = Prepared(select.with_for_update(skip_locked=True) if locked else select)
    return statement


_BY_KEY: dict[tuple[type[SQLModel], bool], Prepared] = {}


def first_row(db: Session, model: type[Model], statement: Prepared, params: Mapping[str, Any]) -> Model | None:
    """The first row a prepared statement of all the model's columns finds, as the session's object."""
    row = statement.run(db, params).first()
    return None if row is None else as_loaded(db, model, row._asdict())


def held(db: Session, model: type[Model], row_id: Any) -> Model | None:
    """The session's object for this row, if it holds one (no statement)."""
    return db.identity_map.get(_identity(model, row_id))  # type: ignore[no-any-return]


def get_row(db: Session, model: type[Model], row_id: Any) -> Model | None:
    """As `db.get`: the session's object for this id if it holds one, else the row read by one
    statement built once per table, as the session's object; None if there is no such row. (A
    get that reads costs the ORM's query, several times the statement, on paths every text takes.)"""
    if row_id is None:
        return None
    found = held(db, model, row_id)
    return found if found is not None else first_row(db, model, _by_key(model, locked=False), {"row_id": row_id})


def insert_row(db: Session, rows: sa.Table, values: dict[str, Any]) -> Any:
    """Write one row of these columns now and return its id (for a row nothing in the unit of work
    reads back as an object: a text, an answer). One prebuilt statement per table and set of columns."""
    key = (rows.name, tuple(sorted(values)))
    statement = _ROW_INSERTS.get(key)
    if statement is None:
        statement = _ROW_INSERTS[key] = Prepared(
            rows.insert()
            .values({name: sa.bindparam(name, type_=rows.c[name].type) for name in key[1]})
            .returning(rows.c.id)
        )
    return statement.run(db, values).scalar_one()


def as_loaded(db: Session, model: type[Model], values: Mapping[str, Any]) -> Model:
    """All the model's columns of one row (`row._asdict()`), read by a prepared statement, as the
    session's object for it: the one the session holds already (as a query would give), or a new one
    kept as if a query had loaded it, so later changes to it are written as usual."""
    key = _identity(model, values[_key_of(model)])
    found = db.identity_map.get(key)
    if found is not None:
        return found  # type: ignore[no-any-return]
    if values.keys() != _columns(model):
        raise ValueError(f"as_loaded takes a row of every column of {model.__name__}")
    obj = _mapper(model).class_manager.new_instance()
    obj.__dict__.update(values)  # as the ORM's loader sets them: no change history, nothing left unloaded
    # What make_transient_to_detached does for a new object with every column set: its identity
    # key (it had no history to forget, and no attribute to mark unloaded, and working those out
    # cost more than the rest of this).
    instance_state(obj).key = key
    db.add(obj)
    return obj  # type: ignore[no-any-return]


_COLUMNS: dict[type[SQLModel], frozenset[str]] = {}
_MAPPERS: dict[type[SQLModel], Mapper[Any]] = {}


def _mapper(model: type[SQLModel]) -> Mapper[Any]:
    found = _MAPPERS.get(model)
    if found is None:
        # The mappers are made ready (their attributes instrumented) at the first query; a process
        # whose first use of the ORM is a row read here must make them ready itself.
        sa.orm.configure_mappers()
        found = _MAPPERS[model] = sa.inspect(model)
    return found


def _identity(model: type[SQLModel], row_id: Any) -> Any:
    """The session's key for this row of the model (as `Session.identity_key` makes it, without its cost)."""
    return _mapper(model).identity_key_from_primary_key((row_id,))


def _key_of(model: type[SQLModel]) -> str:
    """The name of the model's primary key column (one column: "id", or a participant's id)."""
    found = _KEYS.get(model)
    if found is None:
        (column,) = _mapper(model).primary_key
        found = _KEYS[model] = str(column.key)
    return found


_KEYS: dict[type[SQLModel], str] = {}


def _columns(model: type[SQLModel]) -> frozenset[str]:
    return _COLUMNS.get(model) or _COLUMNS.setdefault(model, frozenset(c.key for c in table(model).columns))


def expire_loaded(db: Session, model: type[SQLModel], row_id: Any) -> None:
    """After a row was written by a statement, not through its object: the session's copy, if it
    has one, is read afresh where it is used next."""
    loaded = held(db, model, row_id)
    if loaded is not None:
        db.expire(loaded)
