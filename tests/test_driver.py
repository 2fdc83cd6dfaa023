"""Statements run straight on the driver read and write exactly what the session would, in its
transaction, and fail with SQLAlchemy's own errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from assistant.db.driver import Prepared
from assistant.db.models import AuditLog, InboundReceipt, Participant, SendPace, Specialist, User, table
from assistant.db.models.columns import UTCDateTime
from assistant.db.rows import as_loaded
from assistant.db.signers import Signer, signer
from assistant.db.units import (
    lock_participant,
    lock_participant_by_phone,
    make_engine,
    shared_connection,
    transaction,
)
from assistant.imports.caseload import import_caseload
from assistant.runtime import Runtime

from .conftest import START

AT = datetime(2027, 3, 28, 0, 30, tzinfo=UTC)  # the night the clocks go forward in the UK

_audit, _receipt, _pace = table(AuditLog), table(InboundReceipt), table(SendPace)
_WRITE_AUDIT = Prepared(
    _audit.insert()
    .values(
        at=sa.bindparam("at", type_=_audit.c.at.type),
        user_email=sa.bindparam("who"),
        action="driver_test",
        detail=sa.bindparam("detail", type_=_audit.c.detail.type),
    )
    .returning(_audit.c.id, _audit.c.at)
)
_READ_AUDIT = Prepared(
    sa.select(_audit.c.at, _audit.c.detail, _audit.c.action).where(_audit.c.id == sa.bindparam("id"))
)
_RECEIPT = Prepared(_receipt.insert().values(message_sid=sa.bindparam("sid"), received_at=sa.bindparam("at")))
_COUNT_RECEIPTS = Prepared(sa.select(sa.func.count()).select_from(_receipt))
_PACE_NEXT = Prepared(
    _pace.update()
    .where(_pace.c.pool == sa.bindparam("pool"))
    .values(next_at=_pace.c.next_at + sa.bindparam("step", type_=sa.Float))
    .returning(_pace.c.next_at)
)


def test_values_go_in_and_come_out_as_through_the_session(db_url: str) -> None:
    engine = make_engine(db_url)
    detail = {"words": "can't make it", "ids": [3, 4], "late": None}
    with transaction(engine) as db:
        written = _WRITE_AUDIT.run(db, {"at": AT + timedelta(hours=1), "who": "sam@example.org", "detail": detail})
        row_id, at = written.one()
        assert at == AT + timedelta(hours=1) and at.tzinfo is not None
        db.add(SendPace(pool="driver_test", next_at=10.25))  # flushed before the next statement, as by the session
        assert _PACE_NEXT.run(db, {"pool": "driver_test", "step": 0.5}).scalar_one() == pytest.approx(10.75)
    with transaction(engine) as db:
        through_driver = _READ_AUDIT.run(db, {"id": row_id}).one()
        through_session = db.execute(
            sa.select(_audit.c.at, _audit.c.detail, _audit.c.action).where(_audit.c.id == row_id)
        ).one()
        assert tuple(through_driver) == tuple(through_session)
        assert through_driver.detail == detail and through_driver.action == "driver_test"
        assert db.get(SendPace, "driver_test").next_at == pytest.approx(10.75)
    engine.dispose()


def test_a_broken_rule_is_sqlalchemys_integrity_error_and_nothing_is_kept(db_url: str) -> None:
    engine = make_engine(db_url)
    with pytest.raises(sa.exc.IntegrityError), transaction(engine) as db:
        _RECEIPT.run(db, {"sid": "SM1", "at": AT})
        _RECEIPT.run(db, {"sid": "SM1", "at": AT})
    with transaction(engine) as db:
        assert _COUNT_RECEIPTS.run(db).scalar() == 0
    engine.dispose()


def test_a_missing_or_unknown_parameter_is_refused_before_the_database_is_asked(db_url: str) -> None:
    engine = make_engine(db_url)
    with transaction(engine) as db:
        with pytest.raises(ValueError, match="missing parameters"):
            _RECEIPT.run(db, {"sid": "SM1"})
        with pytest.raises(KeyError):
            _RECEIPT.run(db, {"sid": "SM1", "at": AT, "who": "nobody"})
        assert _COUNT_RECEIPTS.run(db).scalar() == 0
    engine.dispose()


def test_a_list_written_into_the_sql_is_refused() -> None:
    from sqlalchemy.dialects import sqlite

    expanding = Prepared(
        sa.select(_receipt.c.message_sid).where(_receipt.c.message_sid.in_(sa.bindparam("sids", expanding=True)))
    )
    with pytest.raises(ValueError, match="no expanding IN"):
        expanding._compile(sqlite.dialect())


def test_columns_left_out_get_their_defaults_not_null(db_url: str) -> None:
    """A text written with only some columns still gets the defaults the model gives the rest."""
    from assistant.db.models import Message

    messages = table(Message)
    write = Prepared(
        messages.insert()
        .values(
            direction="out", body=sa.bindparam("body"), at=sa.bindparam("at"), status="queued", phone="+447700900001"
        )
        .returning(messages.c.attempts, messages.c.segments, messages.c.automated)
    )
    engine = make_engine(db_url)
    with transaction(engine) as db:
        assert tuple(write.run(db, {"body": "Hello", "at": AT}).one()) == (0, 1, False)
    engine.dispose()


def test_an_insert_that_asks_for_nothing_back_runs_where_the_database_returns_its_key(db_url: str) -> None:
    """PostgreSQL's INSERT returns a new row's key unasked: the statement still runs, and writes."""
    write = Prepared(
        _audit.insert().values(at=sa.bindparam("at"), user_email=sa.bindparam("who"), action="driver_test", detail={})
    )
    engine = make_engine(db_url)
    with transaction(engine) as db:
        write.run(db, {"at": AT, "who": "sam@example.org"})
        write.run(db, {"at": AT, "who": "chris@example.org"})
    with transaction(engine) as db:
        written = db.execute(sa.select(_audit.c.user_email).where(_audit.c.action == "driver_test")).scalars().all()
    assert sorted(written) == ["chris@example.org", "sam@example.org"]
    engine.dispose()


def test_a_row_read_by_a_statement_is_the_sessions_object_and_its_changes_are_written(
    rt: Runtime, caseload_file: Path
) -> None:
    """lock_participant reads the person's row through the driver: the object it gives is the one
    the session holds (the same object a later query returns), and a change to it is written."""
    import_caseload(rt, caseload_file, START)
    with transaction(rt.engine) as db:
        person = lock_participant_by_phone(db, "+447700900101")
        assert person is not None and person.first_name == "Alex" and person.created_at == START
        state = sa.inspect(person)
        assert not db.dirty and state.persistent and not state.modified and not state.unloaded
        assert state.key == db.identity_key(Participant, person.id)
        assert lock_participant(db, person.id or 0) is person
        assert db.exec(select(Participant).where(Participant.phone == "+447700900101")).one() is person
        person.first_name = "Alexandra"
        assert lock_participant_by_phone(db, "+447700900999") is None
    with transaction(rt.engine) as db:
        again = db.exec(select(Participant).where(Participant.phone == "+447700900101")).one()
        assert again.first_name == "Alexandra"
    with transaction(rt.engine) as db, pytest.raises(ValueError, match="every column"):
        as_loaded(db, Participant, _partial_row(db))


def test_the_signer_read_with_the_lock_is_the_one_a_statement_reads(rt: Runtime, caseload_file: Path) -> None:
    """Who signs a person's texts comes with their locked row: the same name, address and "has
    left" as the signer's own statement gives, for a specialist who has left and one who has not."""
    from assistant.care.signins import deactivate

    import_caseload(rt, caseload_file, START)
    with transaction(rt.engine) as db:
        sam = db.exec(select(Specialist).where(Specialist.email == "sam.jones@example.org")).one()
        service_id = db.exec(select(Participant.service_id)).first()
        user = User(email=sam.email, password_hash="x", role="specialist", service_id=service_id, specialist_id=sam.id)
        db.add(user)
        db.flush()
        deactivate(db, user, START)
    expected = {
        "+447700900101": Signer("Sam Jones", "sam.jones@example.org", left=True),
        "+447700900103": Signer("Chris Lee", "chris.lee@example.org", left=False),
    }
    for phone, signed_by in expected.items():
        with transaction(rt.engine) as db:
            person = lock_participant_by_phone(db, phone)
            assert person is not None and person.specialist_id is not None
            with_the_lock = signer(db, person.specialist_id)
        with transaction(rt.engine) as db:
            alone = signer(db, person.specialist_id)
        assert with_the_lock == alone == signed_by
    with transaction(rt.engine) as db:  # read with the lock, not afterwards
        person = lock_participant_by_phone(db, "+447700900103")
        assert person is not None and person.specialist_id is not None
        db.execute(sa.text("UPDATE specialist SET name = 'Christine Lee' WHERE id = :id"), {"id": person.specialist_id})
        assert signer(db, person.specialist_id) == expected["+447700900103"]


def _partial_row(db: Session) -> Any:
    """A row of some of the person's columns, to be refused."""
    participant = table(Participant)
    return Prepared(sa.select(participant.c.id, participant.c.first_name)).run(db).first()._asdict()


def test_a_read_outside_any_unit_waits_for_no_writer_and_sees_only_what_was_committed(db_url: str) -> None:
    """The clock's "what is due" lookups: a read while another unit of work writes. On SQLite a unit
    of work would queue for the writer's turn (and give up after the lock timeout); a read does not."""
    engine = make_engine(db_url, lock_timeout=2)
    detail = {"words": "running late"}
    with transaction(engine) as db:
        kept = _WRITE_AUDIT.run(db, {"at": AT, "who": "sam@example.org", "detail": detail}).one().id
    with transaction(engine) as writer:
        unsaved = _WRITE_AUDIT.run(writer, {"at": AT, "who": "sam@example.org", "detail": {}}).one().id
        read = _READ_AUDIT.read(engine, {"id": kept}).one()
        assert (read.at, read.detail, read.action) == (AT, detail, "driver_test")
        assert _READ_AUDIT.read(engine, {"id": unsaved}).first() is None  # not committed yet
    assert _READ_AUDIT.read(engine, {"id": unsaved}).one().action == "driver_test"
    assert engine.pool.checkedout() == 0  # each read gave its connection back
    if engine.dialect.name == "postgresql":  # and left no transaction open on it
        with engine.connect() as connection:
            open_elsewhere = connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        assert open_elsewhere == 0
    engine.dispose()


def test_a_read_that_fails_is_sqlalchemys_error_and_gives_its_connection_back(db_url: str) -> None:
    engine = make_engine(db_url)
    missing = Prepared(sa.select(sa.table("no_such_table", sa.column("x")).c.x))
    with pytest.raises(sa.exc.DBAPIError):
        missing.read(engine)
    assert engine.pool.checkedout() == 0
    assert _COUNT_RECEIPTS.read(engine).scalar() == 0  # the engine reads on as before
    engine.dispose()


def test_a_row_read_first_thing_in_a_new_process_is_a_working_object(tmp_path: Path) -> None:
    """A web worker's first use of the ORM may be a row read by a statement (the sender's person):
    its object must work as a query's would, though no query has made the mappers ready yet."""
    import subprocess
    import sys

    script = f"""
from datetime import UTC, datetime
from assistant.db.models import AuditLog
from assistant.db.rows import add_now, get_row
from assistant.db.units import make_engine, transaction, upgrade
url = "sqlite:///{tmp_path / "fresh.db"}"
upgrade(url)
engine = make_engine(url)
with transaction(engine) as db:
    row = add_now(db, AuditLog, at=datetime(2027, 1, 1, tzinfo=UTC), user_email="x", action="first", detail={{}})
    row_id = row.id
with transaction(engine) as db:
    print(get_row(db, AuditLog, row_id).action)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "first"


def test_get_row_is_the_sessions_object_or_the_row_or_none(db_url: str) -> None:
    from assistant.db.rows import get_row

    engine = make_engine(db_url)
    with transaction(engine) as db:
        row_id = _WRITE_AUDIT.run(db, {"at": AT, "who": "sam@example.org", "detail": {"n": 1}}).one().id
    with transaction(engine) as db:
        found = get_row(db, AuditLog, row_id)
        assert found is not None and found.detail == {"n": 1} and found.at == AT
        assert get_row(db, AuditLog, row_id) is found is db.get(AuditLog, row_id)
        assert get_row(db, AuditLog, row_id + 1000) is None and get_row(db, AuditLog, None) is None
        found.action = "changed"
    with transaction(engine) as db:
        assert db.get(AuditLog, row_id).action == "changed"  # type: ignore[union-attr]
    engine.dispose()


def test_units_sharing_a_connection_are_each_their_own_transaction(db_url: str) -> None:
    """The clock's tick: its units of work take one pooled connection in turn. Each commits or rolls
    back on its own, one that fails leaves the next free to go on, and the connection goes back at
    the end."""
    engine = make_engine(db_url, lock_timeout=2)
    checkouts: list[object] = []
    sa.event.listen(engine, "checkout", lambda dbapi, record, proxy: checkouts.append(dbapi))
    with shared_connection(engine):
        with transaction(engine) as db:
            _RECEIPT.run(db, {"sid": "SM1", "at": AT})
        with pytest.raises(sa.exc.IntegrityError), transaction(engine) as db:
            _RECEIPT.run(db, {"sid": "SM2", "at": AT})
            _RECEIPT.run(db, {"sid": "SM1", "at": AT})  # the same again: the unit fails, SM2 goes with it
        assert _COUNT_RECEIPTS.read(engine).scalar() == 1  # the first was committed on its own
        with transaction(engine) as db:
            _RECEIPT.run(db, {"sid": "SM3", "at": AT})
        assert engine.pool.checkedout() == 1  # the shared one, between units
    assert engine.pool.checkedout() == 0
    assert len(checkouts) == 2  # one for the three units, one for the read beside them
    with transaction(engine) as db:
        kept = db.execute(sa.select(_receipt.c.message_sid).order_by(_receipt.c.message_sid)).scalars().all()
    assert kept == ["SM1", "SM3"]
    engine.dispose()


def test_times_are_stored_as_sqlalchemys_own_text_and_read_back_as_utc() -> None:
    """On SQLite a time is converted by one function each way: the same text SQLAlchemy's own
    DATETIME writes (so rows written before read the same), aware UTC when read, naive refused."""
    dialect = sa.create_engine("sqlite://").dialect
    ours = UTCDateTime().dialect_impl(dialect)
    to_text, from_text = ours.bind_processor(dialect), ours.result_processor(dialect, None)
    sqlalchemys = sa.DateTime().dialect_impl(dialect)
    theirs_to_text, theirs_from_text = sqlalchemys.bind_processor(dialect), sqlalchemys.result_processor(dialect, None)
    plus_one = timezone(timedelta(hours=1))
    for moment in (AT, datetime(2026, 10, 25, 1, 30, 0, 123, tzinfo=plus_one), datetime(999, 1, 2, tzinfo=UTC)):
        text = to_text(moment)
        assert text == theirs_to_text(moment.astimezone(UTC).replace(tzinfo=None))
        assert from_text(text) == moment and from_text(text).tzinfo is UTC
        assert from_text(text) == theirs_from_text(text).replace(tzinfo=UTC)
    assert from_text("2027-03-28 01:30:00") == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)  # no fraction written
    assert to_text(None) is None and from_text(None) is None
    with pytest.raises(ValueError, match="naive"):
        to_text(datetime(2027, 3, 28, 1, 30))
