"""faces

Revision ID: 0007
Revises: 0002
Create Date: 2026-11-21 06:12:49.989973+00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('face_events',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('running', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('starts_at IS NULL OR ends_at IS NULL OR ends_at >= starts_at', name=op.f('ck_face_events_period')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_face_events')),
    sa.UniqueConstraint('code', name=op.f('uq_face_events_code'))
    )


def downgrade() -> None:
    op.drop_table('face_events')
