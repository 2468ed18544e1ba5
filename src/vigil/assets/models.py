"""Assets tables: sites, gateways, assets, jobs, maintenance, raw observations, location history,
geofences with their per-asset state and event history, and rules with their per-asset state."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vigil.core.db import Base, Timestamps, UUIDPrimaryKey, utcnow

JOB_STATUSES = ("open", "in_progress", "done")
GEOFENCE_KINDS = ("circle", "polygon")
RULE_KINDS = ("low_battery", "missing", "maintenance_overdue")
METHODS = ("single", "midpoint", "trilateration")
SEVERITIES = ("info", "warning", "critical")


class Site(UUIDPrimaryKey, Timestamps, Base):
    """A place with its own metric frame (x, y in metres) in which gateways and geofences live."""

    __tablename__ = "sites"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text, default=None)


class Gateway(UUIDPrimaryKey, Timestamps, Base):
    """A BLE receiver at a known position; `tx_power` is the RSSI at 1 m (A), `path_loss_exponent` is n."""

    __tablename__ = "gateways"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    site_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    tx_power: Mapped[float] = mapped_column(Float, default=-45.0, server_default="-45")
    path_loss_exponent: Mapped[float] = mapped_column(Float, default=2.0, server_default="2")


class Asset(UUIDPrimaryKey, Timestamps, Base):
    """A tagged thing; `tag_id` is the natural key the tags report."""

    __tablename__ = "assets"

    name: Mapped[str] = mapped_column(String(200))
    tag_id: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(100), default="generic", server_default="generic")
    site_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True,
                                                      default=None)
    battery: Mapped[float | None] = mapped_column(Float, default=None)
    battery_reported_at: Mapped[datetime | None] = mapped_column(default=None)
    last_seen_at: Mapped[datetime | None] = mapped_column(default=None)
    # Time of the newest stored location estimate: an older estimate (replay, race) is not stored.
    located_at: Mapped[datetime | None] = mapped_column(default=None)


job_assets = Table(
    "job_assets",
    Base.metadata,
    Column("job_id", UUID(as_uuid=True), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("asset_id", UUID(as_uuid=True), ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True,
           index=True),
)


class Job(UUIDPrimaryKey, Timestamps, Base):
    """A work order over some assets: open -> in_progress -> done."""

    __tablename__ = "jobs"

    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(20), default="open", server_default="open")
    site_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True,
                                                      default=None)
    due_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    assets: Mapped[list[Asset]] = relationship(secondary=job_assets, lazy="raise")

    __table_args__ = (CheckConstraint(f"status IN {JOB_STATUSES}", name="status"),)


class Maintenance(UUIDPrimaryKey, Timestamps, Base):
    """A maintenance task on one asset; overdue (past `due_at`, not done) raises one alert."""

    __tablename__ = "maintenance"

    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(100))
    notes: Mapped[str | None] = mapped_column(Text, default=None)
    due_at: Mapped[datetime] = mapped_column()
    done_at: Mapped[datetime | None] = mapped_column(default=None)
    overdue_alerted_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        # What the overdue check scans: open records by due date.
        Index("ix_maintenance_open_due", "due_at", postgresql_where=text("done_at IS NULL")),
    )


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


class Rule(UUIDPrimaryKey, Timestamps, Base):
    """An alert rule for one asset, one site, or (neither) every asset; the most specific one wins."""

    __tablename__ = "asset_rules"

    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))
    site_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True,
                                                      default=None)
    asset_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"),
                                                       index=True, default=None)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    severity: Mapped[str] = mapped_column(String(10), default="warning", server_default="warning")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))

    __table_args__ = (
        CheckConstraint(f"kind IN {RULE_KINDS}", name="kind"),
        CheckConstraint(f"severity IN {SEVERITIES}", name="severity"),
        CheckConstraint("site_id IS NULL OR asset_id IS NULL", name="one_scope"),
    )


class RuleState(Base):
    """Whether a rule's condition currently holds for an asset, so an alert is raised once per episode."""

    __tablename__ = "asset_rule_states"

    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean)
    since: Mapped[datetime] = mapped_column(default=utcnow)
