"""sign ins: each signed-in browser is a row the server can end

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 12:00:00.000000

The session cookie now holds only a random token whose hash is stored here. Cookies
issued before the upgrade carry a user id instead and stop working: everyone signs in again.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import assistant.db.models


revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('signin',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', assistant.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', assistant.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('remote_addr', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user_agent', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('ended_at', assistant.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.ForeignKeyConstraint(['service_id'], ['service.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('signin', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signin_service_id'), ['service_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_signin_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('signin', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signin_user_id'))
        batch_op.drop_index(batch_op.f('ix_signin_service_id'))
    op.drop_table('signin')
