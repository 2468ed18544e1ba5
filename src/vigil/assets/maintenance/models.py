"""Maintenance table."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, Timestamps, UUIDPrimaryKey


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
