"""zones.camera_id becomes a foreign key to cameras.id (a UUID), ON DELETE SET NULL

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 06:53:24.501834+00:00

Until now `zones.camera_id` was free text (VARCHAR(64)). Existing values are converted like this:
- a value that is the id of an existing camera, in any spelling PostgreSQL accepts for a UUID
  (upper case, braces, with or without hyphens, surrounding blanks), is kept as that camera's id;
- every other value (not a UUID at all, such as the old seed's "cam-hall-01", or the UUID of a
  camera that does not exist) becomes NULL: the zone is detached from any camera. The zones
  affected are logged by zone_id. Nothing else about the zone changes.
Deleting a camera then sets the `camera_id` of its zones to NULL (the zones stay).

Downgrade turns the column back into VARCHAR(64) holding the UUID text; the values nulled on the
way up are not restored.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from loguru import logger

from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every non-null camera_id becomes the canonical text of the camera it names, or NULL when it names
# none. Matching on the 32 hex digits never casts a string to uuid, so a malformed value cannot fail.
NORMALISE = sa.text(r"""
UPDATE zones AS z
SET camera_id = (
    SELECT c.id::text FROM cameras AS c
    WHERE replace(c.id::text, '-', '')
        = replace(regexp_replace(lower(btrim(z.camera_id)), '^\{(.*)\}$', '\1'), '-', '')
)
WHERE z.camera_id IS NOT NULL
RETURNING z.zone_id, z.camera_id IS NULL AS detached
""")


def upgrade() -> None:
    rows = op.get_bind().execute(NORMALISE).all()
    detached = sorted(zone_id for zone_id, was_detached in rows if was_detached)
    if detached:
        logger.warning("0008: {} zones had a camera_id that is no existing camera's id and were detached "
                       "(camera_id set to NULL): {}", len(detached), ", ".join(detached))
    op.alter_column('zones', 'camera_id', existing_type=sa.VARCHAR(length=64), type_=sa.UUID(),
                    existing_nullable=True, postgresql_using='camera_id::uuid')
    op.create_foreign_key(op.f('fk_zones_camera_id_cameras'), 'zones', 'cameras', ['camera_id'], ['id'],
                          ondelete='SET NULL')


def downgrade() -> None:
    op.drop_constraint(op.f('fk_zones_camera_id_cameras'), 'zones', type_='foreignkey')
    op.alter_column('zones', 'camera_id', existing_type=sa.UUID(), type_=sa.VARCHAR(length=64),
                    existing_nullable=True, postgresql_using='camera_id::text')
