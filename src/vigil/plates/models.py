"""Plate events (raw and normalised plate, images by blob key) and the watchlist."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, Timestamps, UUIDPrimaryKey, utcnow


class PlateEvent(UUIDPrimaryKey, Base):
    """One read of a plate by a camera. `event_uid` (the device's id) makes ingest idempotent."""

    __tablename__ = "plate_events"

    event_uid: Mapped[str | None] = mapped_column(String(200), unique=True)
    # RESTRICT: a camera with history is disabled, not deleted (cameras.service turns this into a 409).
    camera_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cameras.id", ondelete="RESTRICT"))
    plate: Mapped[str] = mapped_column(String(50))
    plate_normalized: Mapped[str] = mapped_column(String(50))
    confidence: Mapped[float] = mapped_column(Float)
    captured_at: Mapped[datetime]
    region: Mapped[str | None] = mapped_column(String(50))
    vehicle: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    tpms: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    bbox: Mapped[list[float] | None] = mapped_column(JSONB)
    frame_key: Mapped[str | None] = mapped_column(String(300))
    frame_type: Mapped[str | None] = mapped_column(String(50))
    crop_key: Mapped[str | None] = mapped_column(String(300))
    crop_type: Mapped[str | None] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)

    __table_args__ = (
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence"),
        Index("ix_plate_events_plate_normalized_captured_at", "plate_normalized", "captured_at"),
        Index("ix_plate_events_camera_id_captured_at", "camera_id", "captured_at"),
        Index("ix_plate_events_captured_at", "captured_at"),
        # Retention purges by age; blob deletes ask whether any event still names a key.
        Index("ix_plate_events_created_at", "created_at"),
        Index("ix_plate_events_frame_key", "frame_key"),
        Index("ix_plate_events_crop_key", "crop_key"),
    )


class WatchlistEntry(UUIDPrimaryKey, Timestamps, Base):
    """A plate to watch for; an ingested event with the same normalised plate raises an alert."""

    __tablename__ = "plate_watchlist"

    plate: Mapped[str] = mapped_column(String(50))
    plate_normalized: Mapped[str] = mapped_column(String(50), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="", server_default="")
    severity: Mapped[str] = mapped_column(String(10), default="warning", server_default="warning")

    __table_args__ = (CheckConstraint("severity IN ('info', 'warning', 'critical')", name="severity"),)
