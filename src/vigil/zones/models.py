"""The zones table."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, String
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
    # The camera whose view the polygon is drawn in; deleting the camera detaches the zone (SET NULL).
    camera_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("cameras.id", ondelete="SET NULL"), default=None, index=True
    )

    __table_args__ = (CheckConstraint(f"kind IN {KINDS}", name="kind"),)
