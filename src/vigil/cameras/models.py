"""Tables of the cameras domain: cameras, model configs and sensors."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, Integer, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, Timestamps, UUIDPrimaryKey

MODEL_KINDS = ("detector", "ocr", "reid", "face")


class Camera(UUIDPrimaryKey, Timestamps, Base):
    """A camera stream. `rtsp_url` is stored as given (the edge needs the password); responses mask it."""

    __tablename__ = "cameras"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    rtsp_url: Mapped[str] = mapped_column(String(2000))
    # Unknown (null) until someone says: the ANPR seed registered cameras by name and URL alone.
    fps: Mapped[int | None] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    zone_ids: Mapped[list[str]] = mapped_column(ARRAY(String(100)), default=list, server_default="{}")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))

    __table_args__ = (
        CheckConstraint("fps BETWEEN 1 AND 120", name="fps"),
        CheckConstraint("width > 0 AND height > 0", name="size"),
        CheckConstraint("(lat IS NULL) = (lon IS NULL)", name="location_pair"),
    )

    @property
    def location(self) -> dict[str, float] | None:
        return None if self.lat is None or self.lon is None else {"lat": self.lat, "lon": self.lon}


class ModelConfig(UUIDPrimaryKey, Timestamps, Base):
    """A model the pipeline runs (detector, OCR, ReID, face), one row per (name, version)."""

    __tablename__ = "model_configs"

    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    version: Mapped[str] = mapped_column(String(100))
    weights_uri: Mapped[str] = mapped_column(String(2000))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))

    __table_args__ = (
        CheckConstraint(f"kind IN {MODEL_KINDS}", name="kind"),
        UniqueConstraint("name", "version", name="uq_model_configs_name_version"),
    )


class Sensor(UUIDPrimaryKey, Timestamps, Base):
    """A detection setup: which camera watches which zone, with its settings. Goes with its camera."""

    __tablename__ = "sensors"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    camera_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), index=True)
    zone_id: Mapped[str | None] = mapped_column(String(100))
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
