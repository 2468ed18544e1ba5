"""alert policies, mutes, history; assignee/suppressed/muted/snooze on alerts; notification exporter kinds

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 14:00:00+00:00

Existing alerts get assignee NULL, suppressed/muted false, no snooze, and an empty history (their past
was not recorded). Downgrade drops the new tables and columns, and deletes exporters of the new kinds
(email, slack, teams, telegram) with their deliveries, since the old kind constraint cannot hold them.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = '0013'
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KINDS = "kind IN ('webhook', 'mqtt', 'kafka')"
NEW_KINDS = "kind IN ('webhook', 'mqtt', 'kafka', 'email', 'slack', 'teams', 'telegram')"


def upgrade() -> None:
    op.add_column('alerts', sa.Column('assignee', sa.String(length=200), nullable=True))
    op.add_column('alerts', sa.Column('suppressed', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    op.add_column('alerts', sa.Column('muted', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    op.add_column('alerts', sa.Column('snoozed_until', sa.DateTime(timezone=True), nullable=True))
    op.create_table('alert_policies',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('match', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('notify', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('quiet_resolve_s', sa.Integer(), nullable=True),
    sa.Column('remind_every_s', sa.Integer(), nullable=True),
    sa.Column('escalate', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('schedule', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_policies')),
    sa.UniqueConstraint('name', name=op.f('uq_alert_policies_name'))
    )
    op.create_table('alert_policy_states',
    sa.Column('alert_id', sa.UUID(), nullable=False),
    sa.Column('policy_id', sa.UUID(), nullable=False),
    sa.Column('steps_done', sa.Integer(), server_default='0', nullable=False),
    sa.Column('notified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('next_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_alert_policy_states_alert_id_alerts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['policy_id'], ['alert_policies.id'], name=op.f('fk_alert_policy_states_policy_id_alert_policies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('alert_id', 'policy_id', name=op.f('pk_alert_policy_states'))
    )
    op.create_index('ix_alert_policy_states_due', 'alert_policy_states', ['next_due_at'], unique=False, postgresql_where=sa.text('next_due_at IS NOT NULL'))
    op.create_index('ix_alert_policy_states_policy', 'alert_policy_states', ['policy_id'], unique=False)
    op.create_table('alert_mutes',
    sa.Column('match', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_mutes'))
    )
    op.create_index('ix_alert_mutes_until', 'alert_mutes', ['until'], unique=False)
    op.create_table('alert_history',
    sa.Column('alert_id', sa.UUID(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('by', sa.String(length=200), nullable=False),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_alert_history_alert_id_alerts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_history'))
    )
    op.create_index('ix_alert_history_alert_at', 'alert_history', ['alert_id', 'at'], unique=False)
    op.drop_constraint(op.f('ck_exporters_kind'), 'exporters', type_='check')
    op.create_check_constraint(op.f('ck_exporters_kind'), 'exporters', NEW_KINDS)


def downgrade() -> None:
    op.execute("DELETE FROM exporters WHERE kind NOT IN ('webhook', 'mqtt', 'kafka')")
    op.drop_constraint(op.f('ck_exporters_kind'), 'exporters', type_='check')
    op.create_check_constraint(op.f('ck_exporters_kind'), 'exporters', OLD_KINDS)
    op.drop_index('ix_alert_history_alert_at', table_name='alert_history')
    op.drop_table('alert_history')
    op.drop_index('ix_alert_mutes_until', table_name='alert_mutes')
    op.drop_table('alert_mutes')
    op.drop_index('ix_alert_policy_states_policy', table_name='alert_policy_states')
    op.drop_index('ix_alert_policy_states_due', table_name='alert_policy_states', postgresql_where=sa.text('next_due_at IS NOT NULL'))
    op.drop_table('alert_policy_states')
    op.drop_table('alert_policies')
    op.drop_column('alerts', 'snoozed_until')
    op.drop_column('alerts', 'muted')
    op.drop_column('alerts', 'suppressed')
    op.drop_column('alerts', 'assignee')
