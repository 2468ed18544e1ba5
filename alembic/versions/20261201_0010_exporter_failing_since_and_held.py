"""Exporters: `failing_since` (auto-disable by time) and `held` deliveries (kept while disabled)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 14:00:00+00:00

Existing exporters start with `failing_since` NULL (not failing); their next failure starts the clock.
Downgrade turns held deliveries into failed ones (the old schema has no `held`), with a note in
`last_error`, and drops the column.
"""
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0010'
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('exporters', sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True))
    op.drop_constraint(op.f('ck_exporter_deliveries_status'), 'exporter_deliveries', type_='check')
    op.create_check_constraint(
        op.f('ck_exporter_deliveries_status'),
        'exporter_deliveries',
        "status IN ('pending', 'delivered', 'failed', 'held')",
    )
    op.create_index(
        'ix_exporter_deliveries_held',
        'exporter_deliveries',
        ['exporter_id', 'created_at'],
        unique=False,
        postgresql_where=sa.text("status = 'held'"),
    )


def downgrade() -> None:
    op.drop_index('ix_exporter_deliveries_held', table_name='exporter_deliveries',
                  postgresql_where=sa.text("status = 'held'"))
    op.execute(
        "UPDATE exporter_deliveries SET status = 'failed', "
        "last_error = 'held while the exporter was disabled; not sent (downgrade)' WHERE status = 'held'"
    )
    op.drop_constraint(op.f('ck_exporter_deliveries_status'), 'exporter_deliveries', type_='check')
    op.create_check_constraint(
        op.f('ck_exporter_deliveries_status'),
        'exporter_deliveries',
        "status IN ('pending', 'delivered', 'failed')",
    )
    op.drop_column('exporters', 'failing_since')
