"""Geofence tables: the fences, each asset's state with each fence, and the enter/exit history."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Float, ForeignKey, Identity, Index, String, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from vigil.assets.types import SEVERITIES
from vigil.core.db import Base, Timestamps, UUIDPrimaryKey, utcnow

GEOFENCE_KINDS = ("circle", "polygon")


class Geofence(UUIDPrimaryKey, Timestamps, Base):
    """A circle or polygon in a site's frame, with the hysteresis that keeps edge tags from flapping."""

    __tablename__ = "geofences"

    name: Mapped[str] = mapped_column(String(200))
    site_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    center_x: Mapped[float | None] = mapped_column(Float, default=None)
    center_y: Mapped[float | None] = mapped_column(Float, default=None)
    radius_m: Mapped[float | None] = mapped_column(Float, default=None)
    polygon: Mapped[list[list[float]] | None] = mapped_column(JSONB, default=None)
    alert_on: Mapped[list[str]] = mapped_column(ARRAY(String(10)), default=list)
    severity: Mapped[str] = mapped_column(String(10), default="warning", server_default="warning")
    margin_m: Mapped[float] = mapped_column(Float, default=0.5, server_default="0.5")
    dwell_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    auto_resolve: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))

    __table_args__ = (
        CheckConstraint(f"kind IN {GEOFENCE_KINDS}", name="kind"),
        CheckConstraint(f"severity IN {SEVERITIES}", name="severity"),
    )


class GeofenceState(Base):
    """Where an asset stands with one fence: inside or not, and a pending crossing waiting out its dwell."""

    __tablename__ = "geofence_states"

    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    geofence_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("geofences.id", ondelete="CASCADE"),
                                                   primary_key=True, index=True)
    inside: Mapped[bool] = mapped_column(Boolean)
    since: Mapped[datetime] = mapped_column()
    pending_since: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class GeofenceEvent(Base):
    """Enter/exit history; dwell analytics are computed from it."""

    __tablename__ = "geofence_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    geofence_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("geofences.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    at: Mapped[datetime] = mapped_column()
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        CheckConstraint("kind IN ('enter', 'exit')", name="kind"),
        Index("ix_geofence_events_asset_at", "asset_id", "at"),
        Index("ix_geofence_events_at", "at"),  # retention
    )
