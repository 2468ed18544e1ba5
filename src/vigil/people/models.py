"""The people table, and the ledger that makes the ReID alert consumer idempotent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, Timestamps, UUIDPrimaryKey, utcnow


class Person(UUIDPrimaryKey, Timestamps, Base):
    """A person the ReID tracker knows by `global_id`, optionally working in one zone."""

    __tablename__ = "people"

    global_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # RESTRICT: a zone is deleted only after its people were cleared (zones.service.delete_zone).
    zone_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("zones.zone_id", ondelete="RESTRICT"), default=None, index=True
    )


class ReidMessage(Base):
    """One `person_reid_alerts` record already turned into an alert; a redelivery is skipped.

    The digest covers the record's position, broker timestamp and bytes, so a redelivered record
    matches while the same JSON produced again (a new occurrence) does not.
    """

    __tablename__ = "reid_messages"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
