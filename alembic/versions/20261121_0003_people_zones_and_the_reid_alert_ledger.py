"""people, zones and the reid alert ledger

zones.camera_id is a plain string for now; it becomes a foreign key to cameras in a later revision.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 06:12:16.417186+00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('reid_messages',
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('digest', name=op.f('pk_reid_messages'))
    )
    op.create_index(op.f('ix_reid_messages_seen_at'), 'reid_messages', ['seen_at'], unique=False)
    op.create_table('zones',
    sa.Column('zone_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), server_default='working', nullable=False),
    sa.Column('geometry', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('camera_id', sa.String(length=64), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('working', 'detection', 'exclusion', 'parking')", name=op.f('ck_zones_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_zones')),
    sa.UniqueConstraint('zone_id', name=op.f('uq_zones_zone_id'))
    )
    op.create_index(op.f('ix_zones_camera_id'), 'zones', ['camera_id'], unique=False)
    op.create_table('people',
    sa.Column('global_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('zone_id', sa.String(length=64), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['zone_id'], ['zones.zone_id'], name=op.f('fk_people_zone_id_zones'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_people')),
    sa.UniqueConstraint('global_id', name=op.f('uq_people_global_id'))
    )
    op.create_index(op.f('ix_people_zone_id'), 'people', ['zone_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_people_zone_id'), table_name='people')
    op.drop_table('people')
    op.drop_index(op.f('ix_zones_camera_id'), table_name='zones')
    op.drop_table('zones')
    op.drop_index(op.f('ix_reid_messages_seen_at'), table_name='reid_messages')
    op.drop_table('reid_messages')
