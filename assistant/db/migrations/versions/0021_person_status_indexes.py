"""indexes on a person's rows by status or kind, on a phone's texts by status and on open flags by
when they are due a reminder, so the lookups made on every text and tick stay as cheap in a
service's second year as in its first week

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
    op.create_index("ix_flag_status_notice", "flag", ["status", "next_notice_at"], unique=False)
    op.create_index("ix_message_phone_status", "message", ["phone", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_message_phone_status", table_name="message")
    op.drop_index("ix_flag_status_notice", table_name="flag")
    op.drop_index("ix_flag_participant_kind", table_name="flag")
    op.drop_index("ix_flowsession_participant_status", table_name="flowsession")
    op.drop_index("ix_duetask_participant_status", table_name="duetask")
