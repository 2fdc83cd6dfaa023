"""indexes on a person's rows by status or kind, so the lookups made on every text stay as cheap
in a person's second year as in their first week

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_duetask_participant_status", "duetask", ["participant_id", "status"], unique=False)
    op.create_index("ix_flowsession_participant_status", "flowsession", ["participant_id", "status"], unique=False)
    op.create_index("ix_flag_participant_kind", "flag", ["participant_id", "kind"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_flag_participant_kind", table_name="flag")
    op.drop_index("ix_flowsession_participant_status", table_name="flowsession")
    op.drop_index("ix_duetask_participant_status", table_name="duetask")
