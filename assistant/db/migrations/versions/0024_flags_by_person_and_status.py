"""flags indexed by person and status, so "has this person an open urgent flag" (asked before
every routine contact) reads their flags instead of every open flag of the service, which SQLite
chose while the index on status alone was the only one its terms fully matched

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_flag_participant_status", "flag", ["participant_id", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_flag_participant_status", table_name="flag")
