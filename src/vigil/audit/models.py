"""The audit_log table: one row per audited request (write and admin actions, refused ones included)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, SmallInteger, String
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, UUIDPrimaryKey, utcnow


class AuditEntry(UUIDPrimaryKey, Base):
    """Who (principal name and key id), what (method, route, action, target), outcome, when, request id."""

    __tablename__ = "audit_log"

    at: Mapped[datetime] = mapped_column(default=utcnow)
    principal: Mapped[str | None] = mapped_column(String(200), default=None)  # None: no valid key
    key_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), default=None)  # None: env admin key
    method: Mapped[str] = mapped_column(String(10))
    route: Mapped[str] = mapped_column(String(300))  # the route template, e.g. /api/v1/exporters/{exporter_id}
    path: Mapped[str] = mapped_column(String(2000))
    action: Mapped[str] = mapped_column(String(200))  # e.g. exporters.update, auth.keys.delete
    target_id: Mapped[str | None] = mapped_column(String(200), default=None)
    status: Mapped[int] = mapped_column(SmallInteger)
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)

    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_key_id_at", "key_id", "at"),
    )
