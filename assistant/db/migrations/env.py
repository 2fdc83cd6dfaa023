"""Alembic environment: the URL comes from the caller's config or ASSISTANT_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from assistant.config import load_settings
from assistant.db import models  # noqa: F401  (registers the tables)
from assistant.db.units import make_engine

config = context.config
url = config.get_main_option("sqlalchemy.url") or load_settings().database_url
target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
