"""journey ends: referral date and source, exit reason, job starts

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import assistant.db.models

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.add_column(sa.Column("referral_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("referral_source", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("exit_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("exit_recorded_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("exit_recorded_by", sa.String(length=254), nullable=True))
    op.create_table(
        "jobstart",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("hours_per_week", sa.Float(), nullable=False),
        sa.Column("employer", sa.String(length=200), nullable=False),
        sa.Column("sector", sa.String(length=64), nullable=False),
        sa.Column("recorded_by", sa.String(length=254), nullable=False),
        sa.Column("recorded_at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sustainment", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_jobstart_participant_id"), "jobstart", ["participant_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_jobstart_participant_id"), table_name="jobstart")
    op.drop_table("jobstart")
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.drop_column("exit_recorded_by")
        batch_op.drop_column("exit_recorded_at")
        batch_op.drop_column("exit_reason")
        batch_op.drop_column("referral_source")
        batch_op.drop_column("referral_date")
