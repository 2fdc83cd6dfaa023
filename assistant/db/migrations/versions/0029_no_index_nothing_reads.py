"""indexes no statement reads by: the due texts and the runs out of time are found by their status
first (ix_message_status, ix_flowsession_status_wait), yet every text written and every question
asked kept these up too

Revision ID: 0029
Revises: 0028
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (index, table, its column)
UNREAD = (
    ("ix_message_next_attempt_at", "message", "next_attempt_at"),
    ("ix_flowsession_wait_until", "flowsession", "wait_until"),
)


def upgrade() -> None:
    for name, table, _column in UNREAD:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for name, table, column in UNREAD:
        op.create_index(name, table, [column], unique=False)
