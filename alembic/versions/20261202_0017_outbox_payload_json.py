"""outbox: the payload is stored as the JSON text the relay publishes (json, not jsonb)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 01:30:00+00:00

`emit` encodes an event once; the row keeps those bytes and the relay sends them as they are, instead
of PostgreSQL re-parsing them into jsonb and the relay decoding and encoding them again. Rows in the
outbox are few (pending or parked), so the type change rewrites a small table.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("outbox", "payload", type_=sa.JSON(), existing_type=postgresql.JSONB(),
                    existing_nullable=False, postgresql_using="payload::json")


def downgrade() -> None:
    op.alter_column("outbox", "payload", type_=postgresql.JSONB(), existing_type=sa.JSON(),
                    existing_nullable=False, postgresql_using="payload::jsonb")
