"""Sites table."""

from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, Timestamps, UUIDPrimaryKey


class Site(UUIDPrimaryKey, Timestamps, Base):
    """A place with its own metric frame (x, y in metres) in which gateways and geofences live."""

    __tablename__ = "sites"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text, default=None)
