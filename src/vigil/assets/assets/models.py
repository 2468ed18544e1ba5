"""Assets table."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, Timestamps, UUIDPrimaryKey


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
