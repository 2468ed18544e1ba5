"""scenarios

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 06:11:48.662178+00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('scenarios',
    sa.Column('source', sa.String(length=2048), nullable=False),
    sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('status', sa.String(length=32), server_default='init_startup', nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('current_run_id', sa.UUID(), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('init_startup', 'init_startup_processing', 'active', 'in_shutdown_processing', 'inactive', 'failed')", name=op.f('ck_scenarios_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scenarios'))
    )
    op.create_index('ix_scenarios_status_created', 'scenarios', ['status', 'created_at'], unique=False)
    op.create_table('scenario_runs',
    sa.Column('scenario_id', sa.UUID(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='queued', nullable=False),
    sa.Column('runner', sa.String(length=200), nullable=True),
    sa.Column('frames_read', sa.Integer(), server_default='0', nullable=False),
    sa.Column('frames_processed', sa.Integer(), server_default='0', nullable=False),
    sa.Column('predictions', sa.Integer(), server_default='0', nullable=False),
    sa.Column('fps', sa.Float(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('queued', 'running', 'completed', 'failed', 'stopped', 'cancelled')", name=op.f('ck_scenario_runs_status')),
    sa.ForeignKeyConstraint(['scenario_id'], ['scenarios.id'], name=op.f('fk_scenario_runs_scenario_id_scenarios'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scenario_runs'))
    )
    op.create_index('ix_scenario_runs_scenario_attempt', 'scenario_runs', ['scenario_id', 'attempt'], unique=False)
    op.create_table('scenario_transitions',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('scenario_id', sa.UUID(), nullable=False),
    sa.Column('from_status', sa.String(length=32), nullable=True),
    sa.Column('to_status', sa.String(length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('by', sa.String(length=200), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['scenario_id'], ['scenarios.id'], name=op.f('fk_scenario_transitions_scenario_id_scenarios'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scenario_transitions'))
    )
    op.create_index('ix_scenario_transitions_scenario_id', 'scenario_transitions', ['scenario_id', 'id'], unique=False)
    op.create_table('scenario_predictions',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('scenario_id', sa.UUID(), nullable=False),
    sa.Column('run_id', sa.UUID(), nullable=False),
    sa.Column('frame', sa.Integer(), nullable=False),
    sa.Column('ts', sa.Float(), nullable=False),
    sa.Column('label', sa.String(length=32), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('bbox', postgresql.ARRAY(sa.Integer()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['scenario_runs.id'], name=op.f('fk_scenario_predictions_run_id_scenario_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['scenario_id'], ['scenarios.id'], name=op.f('fk_scenario_predictions_scenario_id_scenarios'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scenario_predictions'))
    )
    op.create_index('ix_scenario_predictions_run_frame', 'scenario_predictions', ['run_id', 'frame'], unique=False)
    op.create_index('ix_scenario_predictions_scenario_id', 'scenario_predictions', ['scenario_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_scenario_predictions_scenario_id', table_name='scenario_predictions')
    op.drop_index('ix_scenario_predictions_run_frame', table_name='scenario_predictions')
    op.drop_table('scenario_predictions')
    op.drop_index('ix_scenario_transitions_scenario_id', table_name='scenario_transitions')
    op.drop_table('scenario_transitions')
    op.drop_index('ix_scenario_runs_scenario_attempt', table_name='scenario_runs')
    op.drop_table('scenario_runs')
    op.drop_index('ix_scenarios_status_created', table_name='scenarios')
    op.drop_table('scenarios')
