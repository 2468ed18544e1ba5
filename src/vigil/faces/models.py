"""Faces tables: photo events, their images, the faces found in them (pgvector), clusters and jobs."""

from __future__ import annotations

import uuid
from datetime import datetime

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vigil.core.db import Base, Timestamps, UUIDPrimaryKey, utcnow

EMBEDDING_DIM = 128  # dlib ResNet v1; a model of another width gets its own column and index


class FaceEvent(UUIDPrimaryKey, Timestamps, Base):
    """An occasion (a wedding, say) whose photos are uploaded; `code` is its natural key."""

    __tablename__ = "face_events"

    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime | None] = mapped_column(default=None)
    ends_at: Mapped[datetime | None] = mapped_column(default=None)
    running: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    __table_args__ = (
        CheckConstraint("starts_at IS NULL OR ends_at IS NULL OR ends_at >= starts_at", name="period"),
    )


class FaceImage(UUIDPrimaryKey, Base):
    """One uploaded photo. The file is in blob storage under `blob_key`; (event, sha256) is unique."""

    __tablename__ = "face_images"

    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("face_events.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    blob_key: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(50))
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    taken_at: Mapped[datetime | None] = mapped_column(default=None)
    filename: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    event: Mapped[FaceEvent] = relationship(lazy="raise")
    faces: Mapped[list[Face]] = relationship(lazy="raise", order_by="Face.seq", passive_deletes=True,
                                             back_populates="image")

    __table_args__ = (
        UniqueConstraint("event_id", "sha256", name="uq_face_images_event_sha256"),
        Index("ix_face_images_event_created", "event_id", "created_at"),
        Index("ix_face_images_blob_key", "blob_key"),  # blob deletes ask whether a row still names it
    )

    @property
    def event_code(self) -> str:
        return self.event.code


class FaceCluster(UUIDPrimaryKey, Base):
    """A person within one event: the faces whose `cluster_id` points here. Sizes are counted, not stored."""

    __tablename__ = "face_clusters"

    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("face_events.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Face(UUIDPrimaryKey, Base):
    """A face in an image: its box, and its embedding with the model and alignment that made it.

    Vectors of different models are never compared: every search filters on `model`.
    """

    __tablename__ = "faces"

    image_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("face_images.id", ondelete="CASCADE"), index=True)
    # Denormalised from the image: event-scoped searches scan this event's faces only.
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("face_events.id", ondelete="CASCADE"))
    cluster_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("face_clusters.id", ondelete="SET NULL"), index=True, default=None
    )
    seq: Mapped[int] = mapped_column(Integer)  # order within the image, largest face first
    x: Mapped[int] = mapped_column(Integer)
    y: Mapped[int] = mapped_column(Integer)
    w: Mapped[int] = mapped_column(Integer)
    h: Mapped[int] = mapped_column(Integer)
    det_score: Mapped[float] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String(50))
    alignment: Mapped[str] = mapped_column(String(50))
    embedding: Mapped[list[float]] = mapped_column(Vector(EMBEDDING_DIM))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    image: Mapped[FaceImage] = relationship(lazy="raise", back_populates="faces")

    __table_args__ = (
        Index("ix_faces_event_model", "event_id", "model"),
        # Cross-event nearest-neighbour search: `ORDER BY embedding <-> :q` (L2, the metric of
        # dlib's vectors). pgvector filters after the index scan, so event-scoped searches use an
        # exact scan instead (see service.search).
        Index("ix_faces_embedding_hnsw", "embedding", postgresql_using="hnsw",
              postgresql_with={"m": 16, "ef_construction": 64}, postgresql_ops={"embedding": "vector_l2_ops"}),
    )

    @property
    def bbox(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


JOB_STATUSES = ("queued", "running", "done", "failed")
JOB_PHASES = ("queued", "loading", "clustering", "saving", "done")
JOB_ACTIVE = "status IN ('queued', 'running')"


class FaceClusterJob(UUIDPrimaryKey, Timestamps, Base):
    """A re-clustering of one event's faces, run by the instance that claims it; its row is its progress."""

    __tablename__ = "face_cluster_jobs"

    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("face_events.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="queued", server_default="queued")
    phase: Mapped[str] = mapped_column(String(12), default="queued", server_default="queued")
    total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    processed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    clusters: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    event: Mapped[FaceEvent] = relationship(lazy="raise")

    __table_args__ = (
        CheckConstraint(f"status IN {JOB_STATUSES}", name="status"),
        CheckConstraint(f"phase IN {JOB_PHASES}", name="phase"),
        # One active recompute per event, enforced by the database.
        Index("uq_face_cluster_jobs_active_event", "event_id", unique=True, postgresql_where=text(JOB_ACTIVE)),
    )

    @property
    def event_code(self) -> str:
        return self.event.code

    @property
    def progress(self) -> float:
        if self.status == "done":
            return 1.0
        return round(self.processed / self.total, 4) if self.total else 0.0
