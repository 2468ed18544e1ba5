"""The zones table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import CheckConstraint, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, Timestamps, UUIDPrimaryKey

KINDS = ("working", "detection", "exclusion", "parking")


class Zone(UUIDPrimaryKey, Timestamps, Base):
    """A named polygon in a camera's image plane (or a site plan); `zone_id` is the natural key."""

    __tablename__ = "zones"

    zone_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="working", server_default="working")
    geometry: Mapped[dict[str, Any]] = mapped_column(JSONB)  # a validated GeoJSON Polygon
    # A plain string until the cameras domain exists; then a foreign key with its own migration.
    camera_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)

    __table_args__ = (CheckConstraint(f"kind IN {KINDS}", name="kind"),)
