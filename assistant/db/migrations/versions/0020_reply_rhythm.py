"""each participant's reply rhythm: a few numbers kept per text, read by the silence rules

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import assistant.db.models

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "replyrhythm",
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("asks", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("log_hours_sum", sa.Float(), nullable=False),
        sa.Column("log_hours_sq", sa.Float(), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("first_pending_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_ask_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("noted", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"]),
        sa.PrimaryKeyConstraint("participant_id"),
    )
    with op.batch_alter_table("replyrhythm", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_replyrhythm_last_ask_at"), ["last_ask_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("replyrhythm", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_replyrhythm_last_ask_at"))
    op.drop_table("replyrhythm")
