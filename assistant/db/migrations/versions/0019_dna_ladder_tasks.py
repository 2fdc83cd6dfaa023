"""missed-appointment ladder across media: tasks for the specialist, contact log outcomes

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import assistant.db.models

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contactlog", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column("automated", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "stafftask",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("due_at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("done_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("done_by", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
        sa.Column("contact_log_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["contact_log_id"], ["contactlog.id"]),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("stafftask", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stafftask_due_at"), ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_stafftask_participant_id"), ["participant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_stafftask_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stafftask", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stafftask_status"))
        batch_op.drop_index(batch_op.f("ix_stafftask_participant_id"))
        batch_op.drop_index(batch_op.f("ix_stafftask_due_at"))
    op.drop_table("stafftask")
    with op.batch_alter_table("contactlog", schema=None) as batch_op:
        batch_op.drop_column("automated")
        batch_op.drop_column("outcome")
