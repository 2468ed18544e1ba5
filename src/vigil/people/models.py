"""The people table, and the ledger that makes the ReID alert consumer idempotent."""

from __future__ import annotations

import uuid
from datetime import datetime

from pgvector.sqlalchemy import Vector
from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, Timestamps, UUIDPrimaryKey, utcnow


class Person(UUIDPrimaryKey, Timestamps, Base):
    """A person the ReID tracker knows by `global_id`, optionally working in one zone."""

    __tablename__ = "people"

    global_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # RESTRICT: a zone is deleted only after its people were cleared (zones.service.delete_zone).
    zone_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("zones.zone_id", ondelete="RESTRICT"), default=None, index=True
    )


class ReidMessage(Base):
    """One `person_reid_alerts` record already turned into an alert; a redelivery is skipped.

    The digest covers the record's position, broker timestamp and bytes, so a redelivered record
    matches while the same JSON produced again (a new occurrence) does not.
    """

    __tablename__ = "reid_messages"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ReidGallery(Base):
    """One pgvector ReID gallery (VIGIL_GALLERY_BACKEND=pgvector): its dimension, fixed by its first vector."""

    __tablename__ = "reid_galleries"

    collection: Mapped[str] = mapped_column(String(100), primary_key=True)
    dimension: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReidEmbedding(Base):
    """One ReID vector of one person in a pgvector gallery.

    The column is untyped `vector` (a gallery's dimension is known only at its first vector); the
    gallery creates its HNSW index on `embedding::vector(N)` for its dimension when it is created.
    """

    __tablename__ = "reid_embeddings"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    collection: Mapped[str] = mapped_column(String(100), ForeignKey("reid_galleries.collection", ondelete="CASCADE"))
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    global_id: Mapped[int] = mapped_column(BigInteger)
    camera_id: Mapped[str | None] = mapped_column(String(200), default=None)
    model: Mapped[str | None] = mapped_column(String(200), default=None)
    dim: Mapped[int] = mapped_column(Integer)
    embedding: Mapped[list[float]] = mapped_column(Vector())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
