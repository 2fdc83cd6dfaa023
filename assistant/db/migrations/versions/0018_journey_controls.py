"""participant controls by text and contact windows that fit lives

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 00:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import assistant.db.models

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_windows", sqlmodel.sql.sqltypes.AutoString(length=23), nullable=True))
        batch_op.add_column(sa.Column("paused_until", assistant.db.models.UTCDateTime(timezone=True), nullable=True))
    op.create_table(
        "contactrequest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("code_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("created_at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("done_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_contactrequest_participant_id"), "contactrequest", ["participant_id"], unique=False)
    op.create_index(op.f("ix_contactrequest_status"), "contactrequest", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_contactrequest_status"), table_name="contactrequest")
    op.drop_index(op.f("ix_contactrequest_participant_id"), table_name="contactrequest")
    op.drop_table("contactrequest")
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.drop_column("paused_until")
        batch_op.drop_column("contact_windows")
