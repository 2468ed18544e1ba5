"""faces

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 06:20:33.550962+00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from pgvector.sqlalchemy import Vector

from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('face_events',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('running', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('starts_at IS NULL OR ends_at IS NULL OR ends_at >= starts_at', name=op.f('ck_face_events_period')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_face_events')),
    sa.UniqueConstraint('code', name=op.f('uq_face_events_code'))
    )
    op.create_table('face_cluster_jobs',
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('status', sa.String(length=10), server_default='queued', nullable=False),
    sa.Column('phase', sa.String(length=12), server_default='queued', nullable=False),
    sa.Column('total', sa.Integer(), server_default='0', nullable=False),
    sa.Column('processed', sa.Integer(), server_default='0', nullable=False),
    sa.Column('clusters', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("phase IN ('queued', 'loading', 'clustering', 'saving', 'done')", name=op.f('ck_face_cluster_jobs_phase')),
    sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name=op.f('ck_face_cluster_jobs_status')),
    sa.ForeignKeyConstraint(['event_id'], ['face_events.id'], name=op.f('fk_face_cluster_jobs_event_id_face_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_face_cluster_jobs'))
    )
    op.create_index(op.f('ix_face_cluster_jobs_event_id'), 'face_cluster_jobs', ['event_id'], unique=False)
    op.create_index('uq_face_cluster_jobs_active_event', 'face_cluster_jobs', ['event_id'], unique=True, postgresql_where=sa.text("status IN ('queued', 'running')"))
    op.create_table('face_clusters',
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('model', sa.String(length=50), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['face_events.id'], name=op.f('fk_face_clusters_event_id_face_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_face_clusters'))
    )
    op.create_index(op.f('ix_face_clusters_event_id'), 'face_clusters', ['event_id'], unique=False)
    op.create_table('face_images',
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('blob_key', sa.String(length=300), nullable=False),
    sa.Column('content_type', sa.String(length=50), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['face_events.id'], name=op.f('fk_face_images_event_id_face_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_face_images')),
    sa.UniqueConstraint('event_id', 'sha256', name='uq_face_images_event_sha256')
    )
    op.create_index('ix_face_images_event_created', 'face_images', ['event_id', 'created_at'], unique=False)
    op.create_table('faces',
    sa.Column('image_id', sa.UUID(), nullable=False),
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('cluster_id', sa.UUID(), nullable=True),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('x', sa.Integer(), nullable=False),
    sa.Column('y', sa.Integer(), nullable=False),
    sa.Column('w', sa.Integer(), nullable=False),
    sa.Column('h', sa.Integer(), nullable=False),
    sa.Column('det_score', sa.Float(), nullable=False),
    sa.Column('model', sa.String(length=50), nullable=False),
    sa.Column('alignment', sa.String(length=50), nullable=False),
    sa.Column('embedding', Vector(128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.ForeignKeyConstraint(['cluster_id'], ['face_clusters.id'], name=op.f('fk_faces_cluster_id_face_clusters'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['event_id'], ['face_events.id'], name=op.f('fk_faces_event_id_face_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['image_id'], ['face_images.id'], name=op.f('fk_faces_image_id_face_images'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_faces'))
    )
    op.create_index(op.f('ix_faces_cluster_id'), 'faces', ['cluster_id'], unique=False)
    op.create_index('ix_faces_embedding_hnsw', 'faces', ['embedding'], unique=False, postgresql_using='hnsw', postgresql_with={'m': 16, 'ef_construction': 64}, postgresql_ops={'embedding': 'vector_l2_ops'})
    op.create_index('ix_faces_event_model', 'faces', ['event_id', 'model'], unique=False)
    op.create_index(op.f('ix_faces_image_id'), 'faces', ['image_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_faces_image_id'), table_name='faces')
    op.drop_index('ix_faces_event_model', table_name='faces')
    op.drop_index('ix_faces_embedding_hnsw', table_name='faces', postgresql_using='hnsw', postgresql_with={'m': 16, 'ef_construction': 64}, postgresql_ops={'embedding': 'vector_l2_ops'})
    op.drop_index(op.f('ix_faces_cluster_id'), table_name='faces')
    op.drop_table('faces')
    op.drop_index('ix_face_images_event_created', table_name='face_images')
    op.drop_table('face_images')
    op.drop_index(op.f('ix_face_clusters_event_id'), table_name='face_clusters')
    op.drop_table('face_clusters')
    op.drop_index('uq_face_cluster_jobs_active_event', table_name='face_cluster_jobs', postgresql_where=sa.text("status IN ('queued', 'running')"))
    op.drop_index(op.f('ix_face_cluster_jobs_event_id'), table_name='face_cluster_jobs')
    op.drop_table('face_cluster_jobs')
    op.drop_table('face_events')
