"""scale: blob-key and retention indexes, the pgvector ReID gallery tables

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 14:20:00+00:00

- Indexes on the blob keys (plate frames and crops, face images): a blob is deleted only when no row
  names it any more, and that question is asked per key.
- Indexes on the age columns retention purges by (plate_events.created_at, asset_locations.estimated_at,
  geofence_events.at, scenario_predictions.created_at, finished exporter deliveries, resolved alerts).
- `reid_galleries` and `reid_embeddings` for VIGIL_GALLERY_BACKEND=pgvector. The HNSW index of a
  gallery is made by the app when the gallery's first vector fixes its dimension.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from pgvector.sqlalchemy import Vector

from alembic import op

revision: str = '0012'
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_plate_events_created_at', 'plate_events', ['created_at'])
    op.create_index('ix_plate_events_frame_key', 'plate_events', ['frame_key'])
    op.create_index('ix_plate_events_crop_key', 'plate_events', ['crop_key'])
    op.create_index('ix_face_images_blob_key', 'face_images', ['blob_key'])
    op.create_index('ix_scenario_predictions_created_at', 'scenario_predictions', ['created_at'])
    op.create_index('ix_asset_locations_estimated_at', 'asset_locations', ['estimated_at'])
    op.create_index('ix_geofence_events_at', 'geofence_events', ['at'])
    op.create_index('ix_exporter_deliveries_finished', 'exporter_deliveries', ['updated_at'],
                    postgresql_where=sa.text("status IN ('delivered', 'failed')"))
    op.create_index('ix_alerts_resolved_at', 'alerts', ['resolved_at'], postgresql_where=sa.text("status = 'resolved'"))
    op.create_table('reid_galleries',
    sa.Column('collection', sa.String(length=100), nullable=False),
    sa.Column('dimension', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('collection', name=op.f('pk_reid_galleries'))
    )
    op.create_table('reid_embeddings',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('collection', sa.String(length=100), nullable=False),
    sa.Column('person_id', sa.UUID(), nullable=False),
    sa.Column('global_id', sa.BigInteger(), nullable=False),
    sa.Column('camera_id', sa.String(length=200), nullable=True),
    sa.Column('model', sa.String(length=200), nullable=True),
    sa.Column('dim', sa.Integer(), nullable=False),
    sa.Column('embedding', Vector(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['collection'], ['reid_galleries.collection'],
                            name=op.f('fk_reid_embeddings_collection_reid_galleries'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_reid_embeddings_person_id_people'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reid_embeddings'))
    )
    op.create_index(op.f('ix_reid_embeddings_person_id'), 'reid_embeddings', ['person_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_reid_embeddings_person_id'), table_name='reid_embeddings')
    op.drop_table('reid_embeddings')  # drops the galleries' HNSW indexes with it
    op.drop_table('reid_galleries')
    op.drop_index('ix_alerts_resolved_at', table_name='alerts')
    op.drop_index('ix_exporter_deliveries_finished', table_name='exporter_deliveries')
    op.drop_index('ix_geofence_events_at', table_name='geofence_events')
    op.drop_index('ix_asset_locations_estimated_at', table_name='asset_locations')
    op.drop_index('ix_scenario_predictions_created_at', table_name='scenario_predictions')
    op.drop_index('ix_face_images_blob_key', table_name='face_images')
    op.drop_index('ix_plate_events_crop_key', table_name='plate_events')
    op.drop_index('ix_plate_events_frame_key', table_name='plate_events')
    op.drop_index('ix_plate_events_created_at', table_name='plate_events')
