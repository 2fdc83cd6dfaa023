"""flag notices: urgent flags carry the schedule of their own reminders

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 10:00:00.000000

Reminders were a chain of `escalate_flag` due rows that stopped after a set number
of repeats. They are now a due time on the flag itself, with no cap: pending rows
move onto their flags, and an open urgent flag whose reminders had run out is due
a reminder on the first tick after the upgrade.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import assistant.db.models


revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('flag', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_notice_at', assistant.db.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_notice_at', assistant.db.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('notices', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_index(batch_op.f('ix_flag_next_notice_at'), ['next_notice_at'], unique=False)

    flag = sa.table(
        'flag',
        sa.column('id', sa.Integer()),
        sa.column('severity', sa.String()),
        sa.column('status', sa.String()),
        sa.column('created_at', assistant.db.models.UTCDateTime()),
        sa.column('next_notice_at', assistant.db.models.UTCDateTime()),
        sa.column('notices', sa.Integer()),
    )
    task = sa.table(
        'duetask',
        sa.column('id', sa.Integer()),
        sa.column('kind', sa.String()),
        sa.column('status', sa.String()),
        sa.column('outcome', sa.String()),
        sa.column('due_at', assistant.db.models.UTCDateTime()),
        sa.column('payload', sa.JSON()),
    )
    connection = op.get_bind()
    pending = connection.execute(
        sa.select(task.c.id, task.c.due_at, task.c.payload).where(
            task.c.kind == 'escalate_flag', task.c.status == 'pending'
        )
    ).all()
    for task_id, due_at, payload in pending:
        data = json.loads(payload) if isinstance(payload, str) else (payload or {})
        if data.get('flag_id') is not None:
            connection.execute(
                flag.update()
                .where(flag.c.id == int(data['flag_id']), flag.c.status == 'open')
                .values(next_notice_at=due_at, notices=max(int(data.get('repeat', 1)), 1))
            )
        connection.execute(task.update().where(task.c.id == task_id).values(status='cancelled', outcome='moved_to_flag'))
    connection.execute(
        flag.update()
        .where(flag.c.severity == 'urgent', flag.c.status == 'open', flag.c.next_notice_at.is_(None))
        .values(next_notice_at=flag.c.created_at, notices=1)
    )


def downgrade() -> None:
    with op.batch_alter_table('flag', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flag_next_notice_at'))
        batch_op.drop_column('notices')
        batch_op.drop_column('last_notice_at')
        batch_op.drop_column('next_notice_at')
