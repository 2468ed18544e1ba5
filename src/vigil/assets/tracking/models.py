"""Tracking tables: raw observations and the location history estimated from them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Float, ForeignKey, Identity, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, utcnow

METHODS = ("single", "midpoint", "trilateration")


class Observation(Base):
    """One raw RSSI reading. The key makes a re-delivered reading a no-op; BRIN serves retention."""

    __tablename__ = "observations"

    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    observed_at: Mapped[datetime] = mapped_column(primary_key=True)
    gateway_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"),
                                                  primary_key=True)
    rssi: Mapped[float] = mapped_column(Float)
    battery: Mapped[float | None] = mapped_column(Float, default=None)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=text("now()"))

    __table_args__ = (
        Index("ix_observations_observed_at", "observed_at", postgresql_using="brin"),
        Index("ix_observations_gateway_id", "gateway_id"),
    )


class LocationEstimate(Base):
    """Location history: one row per estimate."""

    __tablename__ = "asset_locations"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    site_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(20))
    accuracy_m: Mapped[float] = mapped_column(Float)
    gateways: Mapped[int] = mapped_column(Integer)
    estimated_at: Mapped[datetime] = mapped_column()

    __table_args__ = (
        CheckConstraint(f"method IN {METHODS}", name="method"),
        Index("ix_asset_locations_asset_estimated", "asset_id", "estimated_at"),
        Index("ix_asset_locations_estimated_at", "estimated_at"),  # retention
    )
