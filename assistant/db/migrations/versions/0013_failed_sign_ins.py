"""failed sign-ins: refused sign-ins by address, shared by every worker

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 13:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import assistant.db.models

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "failedsignin",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_failedsignin_address_at", "failedsignin", ["address", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_failedsignin_address_at", table_name="failedsignin")
    op.drop_table("failedsignin")
