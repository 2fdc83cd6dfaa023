"""clock faults: a failed due row keeps its error and is retried; each job's last run is kept

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 01:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import assistant.db.models

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("duetask") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("last_error", sa.String(length=500), nullable=True))
    with op.batch_alter_table("flowsession") as batch:
        batch.add_column(sa.Column("timeout_attempts", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("last_error", sa.String(length=500), nullable=True))
    op.create_table(
        "jobhealth",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_run_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_ok_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("failed_rows", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("jobhealth")
    with op.batch_alter_table("flowsession") as batch:
        batch.drop_column("last_error")
        batch.drop_column("timeout_attempts")
    with op.batch_alter_table("duetask") as batch:
        batch.drop_column("last_error")
        batch.drop_column("attempts")
