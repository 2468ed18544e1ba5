"""audit_log: who changed what (write and admin actions)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 14:20:00+00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0011'
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('principal', sa.String(length=200), nullable=True),
    sa.Column('key_id', sa.UUID(), nullable=True),
    sa.Column('method', sa.String(length=10), nullable=False),
    sa.Column('route', sa.String(length=300), nullable=False),
    sa.Column('path', sa.String(length=2000), nullable=False),
    sa.Column('action', sa.String(length=200), nullable=False),
    sa.Column('target_id', sa.String(length=200), nullable=True),
    sa.Column('status', sa.SmallInteger(), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index('ix_audit_log_at', 'audit_log', ['at'], unique=False)
    op.create_index('ix_audit_log_key_id_at', 'audit_log', ['key_id', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_audit_log_key_id_at', table_name='audit_log')
    op.drop_index('ix_audit_log_at', table_name='audit_log')
    op.drop_table('audit_log')
