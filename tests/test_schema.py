"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlmodel import Session, SQLModel, select

from assistant.db.models import DueTask, Flag, ReplyRhythm
from assistant.db.units import MIGRATIONS, make_engine

PARTICIPANT = (
    "INSERT INTO participant (id, service_id, external_id, first_name, phone, specialist_id, cohort,"
    " checkin_day, checkin_time, checkin_every_weeks, timezone, language, opted_out, unreachable,"
    " paused, show_location, tags) VALUES (:id, 1, :external, 'Alex', :phone, 1, 'out_of_work',"
    " 1, '10:30', 1, 'Europe/London', 'en-GB', false, false, false, false, '[]')"
)


def test_migrations_match_models(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert differences == []


@contextmanager
def at_revision(db_url: str, revision: str) -> Iterator[tuple[sa.Engine, Callable[[], None]]]:
    """The test's database taken back to `revision` with one service and specialist in it, and the
    upgrade to the latest that the test runs once it has written its rows; upgraded again after."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    command.downgrade(config, revision)
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO service (id, slug, name, settings) VALUES (1, 'north', 'north', '{}')")
            )
            connection.execute(
                sa.text("INSERT INTO specialist (id, email, name, service_id) VALUES (1, 'sam@example.org', 'Sam', 1)")
            )
        yield engine, lambda: command.upgrade(config, "head")
    finally:
        engine.dispose()
        command.upgrade(config, "head")


def as_written(engine: sa.Engine, moment: datetime) -> datetime:
    """A moment as a raw INSERT writes it: SQLite's columns keep UTC without its zone."""
    return moment.replace(tzinfo=None) if engine.dialect.name == "sqlite" else moment


def test_reminders_planned_as_due_rows_move_onto_their_flags(db_url: str) -> None:
    """Upgrading a database whose urgent flags had a capped chain of reminder rows: each open flag
    carries its next reminder (one whose reminders had run out is due at once); the rows are retired."""
    with at_revision(db_url, "0010") as (engine, upgrade):

        def at(hour: int) -> datetime:
            return as_written(engine, datetime(2026, 11, 1, hour, 0, tzinfo=UTC))

        with engine.begin() as connection:
            run = connection.execute
            run(sa.text(PARTICIPANT), {"id": 1, "external": "P001", "phone": "+447700900101"})
            for flag_id, status in ((1, "open"), (2, "open"), (3, "acknowledged")):
                run(
                    sa.text(
                        "INSERT INTO flag (id, participant_id, specialist_id, kind, severity, reason, status, evidence,"
                        " created_at) VALUES (:id, 1, 1, 'crisis', 'urgent', 'r', :status, '[]', :at)"
                    ),
                    {"id": flag_id, "status": status, "at": at(10)},
                )
            for task_id, flag_id in ((1, 1), (2, 3)):
                run(
                    sa.text(
                        "INSERT INTO duetask (id, participant_id, kind, due_at, status, payload)"
                        " VALUES (:id, 1, 'escalate_flag', :at, 'pending', :payload)"
                    ),
                    {"id": task_id, "at": at(12), "payload": json.dumps({"flag_id": flag_id, "repeat": 2})},
                )
        upgrade()
        with Session(engine) as db:
            flags = {f.id: (f.status, f.next_notice_at, f.notices) for f in db.exec(select(Flag)).all()}
            tasks = {(t.status, t.outcome) for t in db.exec(select(DueTask)).all()}
        due = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
        assert flags == {
            1: ("open", due, 2),  # its pending reminder, now on the flag
            2: ("open", datetime(2026, 11, 1, 10, 0, tzinfo=UTC), 1),  # had run out: due at once
            3: ("acknowledged", None, 0),  # someone has it: nothing to remind
        }
        assert tasks == {("cancelled", "moved_to_flag")}


def test_silences_under_way_are_given_their_moment_and_silences_told_of_lose_it(db_url: str) -> None:
    """Upgrading a database whose silences had no moment for their next look (read on every tick):
    one under way is due a look at its last ask; one told of needs none; one over stays without."""
    with at_revision(db_url, "0024") as (engine, upgrade):

        def at(day: int) -> datetime:
            return as_written(engine, datetime(2026, 11, day, 10, 30, tzinfo=UTC))

        # participant: (pending, noted, look_at)
        silences = {1: (1, "", None), 2: (2, "flagged", at(20)), 3: (0, "", None), 4: (1, "followed_up", at(21))}
        with engine.begin() as connection:
            for person, (pending, noted, look_at) in silences.items():
                connection.execute(
                    sa.text(PARTICIPANT), {"id": person, "external": f"P00{person}", "phone": f"+44770090010{person}"}
                )
                connection.execute(
                    sa.text(
                        "INSERT INTO replyrhythm (participant_id, asks, answered, log_hours_sum, log_hours_sq,"
                        " pending, first_pending_at, last_ask_at, noted, look_at) VALUES (:id, 5, 3, 0.0, 0.0,"
                        " :pending, :first, :last, :noted, :look)"
                    ),
                    {
                        "id": person,
                        "pending": pending,
                        "first": at(10) if pending else None,
                        "last": at(10 + pending),
                        "noted": noted,
                        "look": look_at,
                    },
                )
        upgrade()
        with Session(engine) as db:
            looks = {r.participant_id: r.look_at for r in db.exec(select(ReplyRhythm)).all()}
        assert looks == {
            1: datetime(2026, 11, 11, 10, 30, tzinfo=UTC),  # under way: due a look at its last ask
            2: None,  # told of: nothing more to judge
            3: None,  # over
            4: datetime(2026, 11, 21, 10, 30, tzinfo=UTC),  # had its moment: kept
        }
