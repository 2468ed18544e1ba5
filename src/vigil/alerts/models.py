"""The alerts table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, Timestamps, UUIDPrimaryKey, utcnow

SEVERITIES = ("info", "warning", "critical")  # in rising order
STATUSES = ("open", "acknowledged", "resolved")
# "Active" = not resolved: the scope of the dedupe index, and of the upsert that relies on it.
ACTIVE_PREDICATE = "status <> 'resolved'"


class Alert(UUIDPrimaryKey, Timestamps, Base):
    """One alert. While not resolved, (source, kind, subject) is unique: a repeat updates it."""

    __tablename__ = "alerts"

    source: Mapped[str] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(200), default="", server_default="")
    severity: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(15), default="open", server_default="open")
    title: Mapped[str] = mapped_column(String(500))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    resolved_by: Mapped[str | None] = mapped_column(String(200), default=None)

    __table_args__ = (
        CheckConstraint(f"severity IN {SEVERITIES}", name="severity"),
        CheckConstraint(f"status IN {STATUSES}", name="status"),
        # The dedupe rule, enforced by the database so concurrent raisers cannot create twins.
        Index("uq_alerts_active_subject", "source", "kind", "subject", unique=True,
              postgresql_where=text(ACTIVE_PREDICATE)),
        Index("ix_alerts_status_last_seen", "status", "last_seen_at"),
        Index("ix_alerts_source_last_seen", "source", "last_seen_at"),
        Index("ix_alerts_resolved_at", "resolved_at", postgresql_where=text("status = 'resolved'")),  # retention
    )
