"""Jobs table and its link table to assets."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Column, ForeignKey, String, Table, Text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vigil.assets.assets.models import Asset
from vigil.core.db import Base, Timestamps, UUIDPrimaryKey

JOB_STATUSES = ("open", "in_progress", "done")

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
