"""assets

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 06:11:18.690741+00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('sites',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sites')),
    sa.UniqueConstraint('name', name=op.f('uq_sites_name'))
    )
    op.create_table('assets',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('tag_id', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=100), server_default='generic', nullable=False),
    sa.Column('site_id', sa.UUID(), nullable=True),
    sa.Column('battery', sa.Float(), nullable=True),
    sa.Column('battery_reported_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('located_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_assets_site_id_sites'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assets')),
    sa.UniqueConstraint('tag_id', name=op.f('uq_assets_tag_id'))
    )
    op.create_index(op.f('ix_assets_site_id'), 'assets', ['site_id'], unique=False)
    op.create_table('gateways',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('site_id', sa.UUID(), nullable=False),
    sa.Column('x', sa.Float(), nullable=False),
    sa.Column('y', sa.Float(), nullable=False),
    sa.Column('tx_power', sa.Float(), server_default='-45', nullable=False),
    sa.Column('path_loss_exponent', sa.Float(), server_default='2', nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_gateways_site_id_sites'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gateways')),
    sa.UniqueConstraint('name', name=op.f('uq_gateways_name'))
    )
    op.create_index(op.f('ix_gateways_site_id'), 'gateways', ['site_id'], unique=False)
    op.create_table('geofences',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('site_id', sa.UUID(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('center_x', sa.Float(), nullable=True),
    sa.Column('center_y', sa.Float(), nullable=True),
    sa.Column('radius_m', sa.Float(), nullable=True),
    sa.Column('polygon', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('alert_on', postgresql.ARRAY(sa.String(length=10)), nullable=False),
    sa.Column('severity', sa.String(length=10), server_default='warning', nullable=False),
    sa.Column('margin_m', sa.Float(), server_default='0.5', nullable=False),
    sa.Column('dwell_s', sa.Float(), server_default='0', nullable=False),
    sa.Column('auto_resolve', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('circle', 'polygon')", name=op.f('ck_geofences_kind')),
    sa.CheckConstraint("severity IN ('info', 'warning', 'critical')", name=op.f('ck_geofences_severity')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_geofences_site_id_sites'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_geofences'))
    )
    op.create_index(op.f('ix_geofences_site_id'), 'geofences', ['site_id'], unique=False)
    op.create_table('jobs',
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=20), server_default='open', nullable=False),
    sa.Column('site_id', sa.UUID(), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('open', 'in_progress', 'done')", name=op.f('ck_jobs_status')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_jobs_site_id_sites'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    op.create_index(op.f('ix_jobs_site_id'), 'jobs', ['site_id'], unique=False)
    op.create_table('asset_locations',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('asset_id', sa.UUID(), nullable=False),
    sa.Column('site_id', sa.UUID(), nullable=False),
    sa.Column('x', sa.Float(), nullable=False),
    sa.Column('y', sa.Float(), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('accuracy_m', sa.Float(), nullable=False),
    sa.Column('gateways', sa.Integer(), nullable=False),
    sa.Column('estimated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("method IN ('single', 'midpoint', 'trilateration')", name=op.f('ck_asset_locations_method')),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_asset_locations_asset_id_assets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_asset_locations_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_asset_locations'))
    )
    op.create_index('ix_asset_locations_asset_estimated', 'asset_locations', ['asset_id', 'estimated_at'], unique=False)
    op.create_index(op.f('ix_asset_locations_site_id'), 'asset_locations', ['site_id'], unique=False)
    op.create_table('asset_rule_states',
    sa.Column('asset_id', sa.UUID(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_asset_rule_states_asset_id_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('asset_id', 'kind', name=op.f('pk_asset_rule_states'))
    )
    op.create_table('asset_rules',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('site_id', sa.UUID(), nullable=True),
    sa.Column('asset_id', sa.UUID(), nullable=True),
    sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('severity', sa.String(length=10), server_default='warning', nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('low_battery', 'missing', 'maintenance_overdue')", name=op.f('ck_asset_rules_kind')),
    sa.CheckConstraint("severity IN ('info', 'warning', 'critical')", name=op.f('ck_asset_rules_severity')),
    sa.CheckConstraint('site_id IS NULL OR asset_id IS NULL', name=op.f('ck_asset_rules_one_scope')),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_asset_rules_asset_id_assets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_asset_rules_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_asset_rules'))
    )
    op.create_index(op.f('ix_asset_rules_asset_id'), 'asset_rules', ['asset_id'], unique=False)
    op.create_index(op.f('ix_asset_rules_site_id'), 'asset_rules', ['site_id'], unique=False)
    op.create_table('geofence_events',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('asset_id', sa.UUID(), nullable=False),
    sa.Column('geofence_id', sa.UUID(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('x', sa.Float(), nullable=False),
    sa.Column('y', sa.Float(), nullable=False),
    sa.CheckConstraint("kind IN ('enter', 'exit')", name=op.f('ck_geofence_events_kind')),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_geofence_events_asset_id_assets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['geofence_id'], ['geofences.id'], name=op.f('fk_geofence_events_geofence_id_geofences'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_geofence_events'))
    )
    op.create_index('ix_geofence_events_asset_at', 'geofence_events', ['asset_id', 'at'], unique=False)
    op.create_index(op.f('ix_geofence_events_geofence_id'), 'geofence_events', ['geofence_id'], unique=False)
    op.create_table('geofence_states',
    sa.Column('asset_id', sa.UUID(), nullable=False),
    sa.Column('geofence_id', sa.UUID(), nullable=False),
    sa.Column('inside', sa.Boolean(), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('pending_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_geofence_states_asset_id_assets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['geofence_id'], ['geofences.id'], name=op.f('fk_geofence_states_geofence_id_geofences'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('asset_id', 'geofence_id', name=op.f('pk_geofence_states'))
    )
    op.create_index(op.f('ix_geofence_states_geofence_id'), 'geofence_states', ['geofence_id'], unique=False)
    op.create_table('job_assets',
    sa.Column('job_id', sa.UUID(), nullable=False),
    sa.Column('asset_id', sa.UUID(), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_job_assets_asset_id_assets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_assets_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id', 'asset_id', name=op.f('pk_job_assets'))
    )
    op.create_index(op.f('ix_job_assets_asset_id'), 'job_assets', ['asset_id'], unique=False)
    op.create_table('maintenance',
    sa.Column('asset_id', sa.UUID(), nullable=False),
    sa.Column('kind', sa.String(length=100), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('overdue_alerted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_maintenance_asset_id_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maintenance'))
    )
    op.create_index(op.f('ix_maintenance_asset_id'), 'maintenance', ['asset_id'], unique=False)
    op.create_index('ix_maintenance_open_due', 'maintenance', ['due_at'], unique=False, postgresql_where=sa.text('done_at IS NULL'))
    op.create_table('observations',
    sa.Column('asset_id', sa.UUID(), nullable=False),
    sa.Column('observed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('gateway_id', sa.UUID(), nullable=False),
    sa.Column('rssi', sa.Float(), nullable=False),
    sa.Column('battery', sa.Float(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_observations_asset_id_assets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['gateway_id'], ['gateways.id'], name=op.f('fk_observations_gateway_id_gateways'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('asset_id', 'observed_at', 'gateway_id', name=op.f('pk_observations'))
    )
    op.create_index('ix_observations_gateway_id', 'observations', ['gateway_id'], unique=False)
    op.create_index('ix_observations_observed_at', 'observations', ['observed_at'], unique=False, postgresql_using='brin')


def downgrade() -> None:
    op.drop_index('ix_observations_observed_at', table_name='observations', postgresql_using='brin')
    op.drop_index('ix_observations_gateway_id', table_name='observations')
    op.drop_table('observations')
    op.drop_index('ix_maintenance_open_due', table_name='maintenance', postgresql_where=sa.text('done_at IS NULL'))
    op.drop_index(op.f('ix_maintenance_asset_id'), table_name='maintenance')
    op.drop_table('maintenance')
    op.drop_index(op.f('ix_job_assets_asset_id'), table_name='job_assets')
    op.drop_table('job_assets')
    op.drop_index(op.f('ix_geofence_states_geofence_id'), table_name='geofence_states')
    op.drop_table('geofence_states')
    op.drop_index(op.f('ix_geofence_events_geofence_id'), table_name='geofence_events')
    op.drop_index('ix_geofence_events_asset_at', table_name='geofence_events')
    op.drop_table('geofence_events')
    op.drop_index(op.f('ix_asset_rules_site_id'), table_name='asset_rules')
    op.drop_index(op.f('ix_asset_rules_asset_id'), table_name='asset_rules')
    op.drop_table('asset_rules')
    op.drop_table('asset_rule_states')
    op.drop_index(op.f('ix_asset_locations_site_id'), table_name='asset_locations')
    op.drop_index('ix_asset_locations_asset_estimated', table_name='asset_locations')
    op.drop_table('asset_locations')
    op.drop_index(op.f('ix_jobs_site_id'), table_name='jobs')
    op.drop_table('jobs')
    op.drop_index(op.f('ix_geofences_site_id'), table_name='geofences')
    op.drop_table('geofences')
    op.drop_index(op.f('ix_gateways_site_id'), table_name='gateways')
    op.drop_table('gateways')
    op.drop_index(op.f('ix_assets_site_id'), table_name='assets')
    op.drop_table('assets')
    op.drop_table('sites')
