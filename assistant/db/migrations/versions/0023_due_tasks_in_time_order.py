"""pending tasks indexed in the order a tick takes them (status, then when due), so finding the
due ones reads only those instead of sorting every pending task on every tick; the index on status
alone is the new one's first column, and goes

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_duetask_status_due", "duetask", ["status", "due_at", "id"], unique=False)
    op.drop_index("ix_duetask_status", table_name="duetask")


def downgrade() -> None:
    op.create_index("ix_duetask_status", "duetask", ["status"], unique=False)
    op.drop_index("ix_duetask_status_due", table_name="duetask")
