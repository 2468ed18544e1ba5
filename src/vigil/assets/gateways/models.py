"""Gateways table."""

from __future__ import annotations

import uuid

from sqlalchemy import Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, Timestamps, UUIDPrimaryKey


class Gateway(UUIDPrimaryKey, Timestamps, Base):
    """A BLE receiver at a known position; `tx_power` is the RSSI at 1 m (A), `path_loss_exponent` is n."""

    __tablename__ = "gateways"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    site_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    tx_power: Mapped[float] = mapped_column(Float, default=-45.0, server_default="-45")
    path_loss_exponent: Mapped[float] = mapped_column(Float, default=2.0, server_default="2")
