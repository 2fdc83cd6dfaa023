"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from assistant.db.units import make_engine


def test_migrations_match_models(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert differences == []


def test_reminders_planned_as_due_rows_move_onto_their_flags(db_url: str) -> None:
    """Upgrading a database whose urgent flags had a capped chain of reminder rows: each open flag
    carries its next reminder (one whose reminders had run out is due at once); the rows are retired."""
    import json
    from datetime import UTC, datetime

    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from assistant.db.units import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    command.downgrade(config, "0010")
    engine = make_engine(db_url)
    sqlite = engine.dialect.name == "sqlite"

    def at(hour: int) -> datetime:
        moment = datetime(2026, 11, 1, hour, 0, tzinfo=UTC)
        return moment.replace(tzinfo=None) if sqlite else moment

    try:
        with engine.begin() as connection:
            run = connection.execute
            run(sa.text("INSERT INTO service (id, slug, name, settings) VALUES (1, 'north', 'north', '{}')"))
            run(sa.text("INSERT INTO specialist (id, email, name, service_id) VALUES (1, 'sam@example.org', 'Sam', 1)"))
            run(
                sa.text(
                    "INSERT INTO participant (id, service_id, external_id, first_name, phone, specialist_id, cohort,"
                    " checkin_day, checkin_time, checkin_every_weeks, timezone, language, opted_out, unreachable,"
                    " paused, show_location, tags) VALUES (1, 1, 'P001', 'Alex', '+447700900101', 1, 'out_of_work',"
                    " 1, '10:30', 1, 'Europe/London', 'en-GB', false, false, false, false, '[]')"
                )
            )
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
        command.upgrade(config, "head")
        from sqlmodel import Session, select

        from assistant.db.models import DueTask, Flag

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
    finally:
        engine.dispose()
        command.upgrade(config, "head")


def test_silences_under_way_are_given_their_moment_and_silences_told_of_lose_it(db_url: str) -> None:
    """Upgrading a database whose silences had no moment for their next look (read on every tick):
    one under way is due a look at its last ask; one told of needs none; one over stays without."""
    from datetime import UTC, datetime

    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from assistant.db.units import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    command.downgrade(config, "0024")
    engine = make_engine(db_url)
    sqlite = engine.dialect.name == "sqlite"

    def at(day: int) -> datetime:
        moment = datetime(2026, 11, day, 10, 30, tzinfo=UTC)
        return moment.replace(tzinfo=None) if sqlite else moment

    # participant: (pending, noted, look_at)
    silences = {1: (1, "", None), 2: (2, "flagged", at(20)), 3: (0, "", None), 4: (1, "followed_up", at(21))}
    try:
        with engine.begin() as connection:
            run = connection.execute
            run(sa.text("INSERT INTO service (id, slug, name, settings) VALUES (1, 'north', 'north', '{}')"))
            run(sa.text("INSERT INTO specialist (id, email, name, service_id) VALUES (1, 'sam@example.org', 'Sam', 1)"))
            for person, (pending, noted, look_at) in silences.items():
                run(
                    sa.text(
                        "INSERT INTO participant (id, service_id, external_id, first_name, phone, specialist_id,"
                        " cohort, checkin_day, checkin_time, checkin_every_weeks, timezone, language, opted_out,"
                        " unreachable, paused, show_location, tags) VALUES (:id, 1, :external, 'Alex', :phone, 1,"
                        " 'out_of_work', 1, '10:30', 1, 'Europe/London', 'en-GB', false, false, false, false, '[]')"
                    ),
                    {"id": person, "external": f"P00{person}", "phone": f"+44770090010{person}"},
                )
                run(
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
        command.upgrade(config, "head")
        from sqlmodel import Session, select

        from assistant.db.models import ReplyRhythm

        with Session(engine) as db:
            looks = {r.participant_id: r.look_at for r in db.exec(select(ReplyRhythm)).all()}
        assert looks == {
            1: datetime(2026, 11, 11, 10, 30, tzinfo=UTC),  # under way: due a look at its last ask
            2: None,  # told of: nothing more to judge
            3: None,  # over
            4: datetime(2026, 11, 21, 10, 30, tzinfo=UTC),  # had its moment: kept
        }
    finally:
        engine.dispose()
        command.upgrade(config, "head")
