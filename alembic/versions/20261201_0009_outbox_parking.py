"""outbox: rows the broker refuses are parked (status, reason, parked_at) instead of blocking the rest

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 14:20:00+00:00

Existing rows are pending. Downgrade deletes parked rows (they could never be published) and drops
the columns.
"""
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("status", sa.String(length=16), server_default="pending", nullable=False))
    op.add_column("outbox", sa.Column("reason", sa.Text(), nullable=True))
    op.add_column("outbox", sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_outbox_status_id", "outbox", ["status", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_outbox_status_id", table_name="outbox")
    op.execute("DELETE FROM outbox WHERE status = 'parked'")
    op.drop_column("outbox", "parked_at")
    op.drop_column("outbox", "reason")
    op.drop_column("outbox", "status")
