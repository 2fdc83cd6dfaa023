"""questionnaire links: private pages for a questionnaire sitting, by a hashed single-use token

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import assistant.db.models

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "questionnairelink",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("created_at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", assistant.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", assistant.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["flowsession.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_questionnairelink_participant_id", "questionnairelink", ["participant_id"], unique=False)
    op.create_index("ix_questionnairelink_session_id", "questionnairelink", ["session_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_questionnairelink_session_id", table_name="questionnairelink")
    op.drop_index("ix_questionnairelink_participant_id", table_name="questionnairelink")
    op.drop_table("questionnairelink")
