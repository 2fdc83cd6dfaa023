"""indexes on one column that a wider index already begins with: every write kept both, and any
query the narrow one served, the wide one serves

Revision ID: 0028
Revises: 0027
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (index, table, its column): each led by a wider index on the same table.
NARROW = (
    ("ix_message_phone", "message", "phone"),  # ix_message_phone_status
    ("ix_flowsession_participant_id", "flowsession", "participant_id"),  # ix_flowsession_participant_status
    ("ix_flowsession_status", "flowsession", "status"),  # ix_flowsession_status_wait
    ("ix_duetask_participant_id", "duetask", "participant_id"),  # ix_duetask_participant_status
    ("ix_flag_participant_id", "flag", "participant_id"),  # ix_flag_participant_kind, _status
    ("ix_flag_status", "flag", "status"),  # ix_flag_status_notice
    ("ix_participant_service_id", "participant", "service_id"),  # ix_participant_quiet
)


def upgrade() -> None:
    for name, table, _column in NARROW:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for name, table, column in NARROW:
        op.create_index(name, table, [column], unique=False)
