"""Seed-compatible creation: cameras may be registered without fps/size, scenarios without a source.

The ANPR seed registered a camera by name and RTSP URL alone, and the scenario seed created scenarios
with no source (its workers were started with one). Unknown values are null, not made up.

Revision ID: 0016
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision: str = "0016"
down_revision: str | None = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for column in ("fps", "width", "height"):
        op.alter_column("cameras", column, existing_type=sa.Integer(), nullable=True)
    op.alter_column("scenarios", "source", existing_type=sa.String(2048), nullable=True)


def downgrade() -> None:
    # Rows made with unknown values cannot go back to a schema that requires them: fill what the old
    # schema needs (the seed defaults of a 25 fps full-HD stream; an empty source fails its next run).
    op.execute("UPDATE cameras SET fps = 25 WHERE fps IS NULL")
    op.execute("UPDATE cameras SET width = 1920 WHERE width IS NULL")
    op.execute("UPDATE cameras SET height = 1080 WHERE height IS NULL")
    op.execute("UPDATE scenarios SET source = '' WHERE source IS NULL")
    op.alter_column("scenarios", "source", existing_type=sa.String(2048), nullable=False)
    for column in ("fps", "width", "height"):
        op.alter_column("cameras", column, existing_type=sa.Integer(), nullable=False)
