"""cameras plates exporters

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 06:15:10.299498+00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('cameras',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('rtsp_url', sa.String(length=2000), nullable=False),
    sa.Column('fps', sa.Integer(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('zone_ids', postgresql.ARRAY(sa.String(length=100)), server_default='{}', nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('(lat IS NULL) = (lon IS NULL)', name=op.f('ck_cameras_location_pair')),
    sa.CheckConstraint('fps BETWEEN 1 AND 120', name=op.f('ck_cameras_fps')),
    sa.CheckConstraint('width > 0 AND height > 0', name=op.f('ck_cameras_size')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cameras')),
    sa.UniqueConstraint('name', name=op.f('uq_cameras_name'))
    )
    op.create_table('exporters',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('config', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('event_types', postgresql.ARRAY(sa.String(length=100)), nullable=False),
    sa.Column('max_attempts', sa.Integer(), server_default='5', nullable=False),
    sa.Column('backoff_seconds', sa.Float(), server_default='2', nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('consecutive_failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('disabled_reason', sa.String(length=1000), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('webhook', 'mqtt', 'kafka')", name=op.f('ck_exporters_kind')),
    sa.CheckConstraint('backoff_seconds > 0', name=op.f('ck_exporters_backoff_seconds')),
    sa.CheckConstraint('max_attempts >= 1', name=op.f('ck_exporters_max_attempts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exporters')),
    sa.UniqueConstraint('name', name=op.f('uq_exporters_name'))
    )
    op.create_table('model_configs',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('version', sa.String(length=100), nullable=False),
    sa.Column('weights_uri', sa.String(length=2000), nullable=False),
    sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('detector', 'ocr', 'reid', 'face')", name=op.f('ck_model_configs_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_configs')),
    sa.UniqueConstraint('name', 'version', name='uq_model_configs_name_version')
    )
    op.create_table('plate_watchlist',
    sa.Column('plate', sa.String(length=50), nullable=False),
    sa.Column('plate_normalized', sa.String(length=50), nullable=False),
    sa.Column('label', sa.String(length=200), server_default='', nullable=False),
    sa.Column('severity', sa.String(length=10), server_default='warning', nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("severity IN ('info', 'warning', 'critical')", name=op.f('ck_plate_watchlist_severity')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plate_watchlist')),
    sa.UniqueConstraint('plate_normalized', name=op.f('uq_plate_watchlist_plate_normalized'))
    )
    op.create_table('exporter_deliveries',
    sa.Column('exporter_id', sa.UUID(), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('event_type', sa.String(length=100), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('status', sa.String(length=10), server_default='pending', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name=op.f('ck_exporter_deliveries_status')),
    sa.ForeignKeyConstraint(['exporter_id'], ['exporters.id'], name=op.f('fk_exporter_deliveries_exporter_id_exporters'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exporter_deliveries'))
    )
    op.create_index('ix_exporter_deliveries_due', 'exporter_deliveries', ['next_attempt_at'], unique=False, postgresql_where=sa.text("status = 'pending'"))
    op.create_index('ix_exporter_deliveries_exporter_created', 'exporter_deliveries', ['exporter_id', 'created_at'], unique=False)
    op.create_index('uq_exporter_deliveries_exporter_event', 'exporter_deliveries', ['exporter_id', 'event_id'], unique=True)
    op.create_table('plate_events',
    sa.Column('event_uid', sa.String(length=200), nullable=True),
    sa.Column('camera_id', sa.UUID(), nullable=False),
    sa.Column('plate', sa.String(length=50), nullable=False),
    sa.Column('plate_normalized', sa.String(length=50), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('captured_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('region', sa.String(length=50), nullable=True),
    sa.Column('vehicle', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('tpms', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('bbox', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('frame_key', sa.String(length=300), nullable=True),
    sa.Column('frame_type', sa.String(length=50), nullable=True),
    sa.Column('crop_key', sa.String(length=300), nullable=True),
    sa.Column('crop_type', sa.String(length=50), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.CheckConstraint('confidence >= 0 AND confidence <= 1', name=op.f('ck_plate_events_confidence')),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], name=op.f('fk_plate_events_camera_id_cameras'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plate_events')),
    sa.UniqueConstraint('event_uid', name=op.f('uq_plate_events_event_uid'))
    )
    op.create_index('ix_plate_events_camera_id_captured_at', 'plate_events', ['camera_id', 'captured_at'], unique=False)
    op.create_index('ix_plate_events_captured_at', 'plate_events', ['captured_at'], unique=False)
    op.create_index('ix_plate_events_plate_normalized_captured_at', 'plate_events', ['plate_normalized', 'captured_at'], unique=False)
    op.create_table('sensors',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('camera_id', sa.UUID(), nullable=False),
    sa.Column('zone_id', sa.String(length=100), nullable=True),
    sa.Column('settings', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], name=op.f('fk_sensors_camera_id_cameras'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sensors')),
    sa.UniqueConstraint('name', name=op.f('uq_sensors_name'))
    )
    op.create_index(op.f('ix_sensors_camera_id'), 'sensors', ['camera_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_sensors_camera_id'), table_name='sensors')
    op.drop_table('sensors')
    op.drop_index('ix_plate_events_plate_normalized_captured_at', table_name='plate_events')
    op.drop_index('ix_plate_events_captured_at', table_name='plate_events')
    op.drop_index('ix_plate_events_camera_id_captured_at', table_name='plate_events')
    op.drop_table('plate_events')
    op.drop_index('uq_exporter_deliveries_exporter_event', table_name='exporter_deliveries')
    op.drop_index('ix_exporter_deliveries_exporter_created', table_name='exporter_deliveries')
    op.drop_index('ix_exporter_deliveries_due', table_name='exporter_deliveries', postgresql_where=sa.text("status = 'pending'"))
    op.drop_table('exporter_deliveries')
    op.drop_table('plate_watchlist')
    op.drop_table('model_configs')
    op.drop_table('exporters')
    op.drop_table('cameras')
