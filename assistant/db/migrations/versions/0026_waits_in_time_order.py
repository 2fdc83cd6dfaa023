"""sessions indexed by status and the end of their wait, so each tick's "which waits have run out"
reads only those (two short ranges), not every session still waiting for a reply

Revision ID: 0026
Revises: 0025
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_flowsession_status_wait", "flowsession", ["status", "wait_until"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_flowsession_status_wait", table_name="flowsession")
