"""Exporters and their delivery log (one row per event per exporter, retried until delivered or failed)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, Timestamps, UUIDPrimaryKey, utcnow

KINDS = ("webhook", "mqtt", "kafka", "email", "slack", "teams", "telegram")
# `held`: the event arrived while its exporter was disabled; sent only if it is enabled with replay.
DELIVERY_STATUSES = ("pending", "delivered", "failed", "held")


class Exporter(UUIDPrimaryKey, Timestamps, Base):
    """Where to send which events. `config` keeps secrets in clear (sending needs them); reads mask them."""

    __tablename__ = "exporters"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(100)))
    max_attempts: Mapped[int] = mapped_column(Integer, default=5, server_default="5")
    backoff_seconds: Mapped[float] = mapped_column(Float, default=2.0, server_default="2")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When the current run of failures began (None while the last attempt succeeded): auto-disable is
    # decided by how long it has been failing, not by how many deliveries failed in a burst.
    failing_since: Mapped[datetime | None] = mapped_column(default=None)
    disabled_reason: Mapped[str | None] = mapped_column(String(1000))

    __table_args__ = (
        CheckConstraint(f"kind IN {KINDS}", name="kind"),
        CheckConstraint("max_attempts >= 1", name="max_attempts"),
        CheckConstraint("backoff_seconds > 0", name="backoff_seconds"),
    )


class Delivery(UUIDPrimaryKey, Timestamps, Base):
    """One event for one exporter. Its id is the `X-Vigil-Delivery` receivers dedupe on."""

    __tablename__ = "exporter_deliveries"

    exporter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("exporters.id", ondelete="CASCADE"))
    # SHA-256 of the event message as published: the same event read twice makes no second delivery.
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(10), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        CheckConstraint(f"status IN {DELIVERY_STATUSES}", name="status"),
        Index("uq_exporter_deliveries_exporter_event", "exporter_id", "event_id", unique=True),
        Index("ix_exporter_deliveries_exporter_created", "exporter_id", "created_at"),
        # The worker's queue: only pending rows, in due order.
        Index("ix_exporter_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        # Held rows per exporter, oldest first: the bound drops from here, a replay sends in this order.
        Index(
            "ix_exporter_deliveries_held",
            "exporter_id",
            "created_at",
            postgresql_where=text("status = 'held'"),
        ),
        # Retention: finished deliveries by age.
        Index("ix_exporter_deliveries_finished", "updated_at",
              postgresql_where=text("status IN ('delivered', 'failed')")),
    )
