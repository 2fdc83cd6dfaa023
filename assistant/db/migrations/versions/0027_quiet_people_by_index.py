"""people indexed by service, last text and when they were added, so each tick's "who has been quiet
for D days" reads only those (two ranges), not every person of the service

Revision ID: 0027
Revises: 0026
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_participant_quiet", "participant", ["service_id", "last_inbound_at", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_participant_quiet", table_name="participant")
