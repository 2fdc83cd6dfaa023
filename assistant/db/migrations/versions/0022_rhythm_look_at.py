"""when the clock next needs to judge each silence under way, so a tick reads only the silences
due a look instead of judging every unanswered text again

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import assistant.db.models

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Empty for every silence already under way: each is judged at the next tick, which sets it.
    with op.batch_alter_table("replyrhythm") as batch:
        batch.add_column(sa.Column("look_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_replyrhythm_look_at"), "replyrhythm", ["look_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_replyrhythm_look_at"), table_name="replyrhythm")
    with op.batch_alter_table("replyrhythm") as batch:
        batch.drop_column("look_at")
