"""What every alert change leaves behind: an `alert.*` event through the outbox and a history entry."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vigil.alerts.models import Alert, AlertHistory
from vigil.alerts.schemas import AlertRead
from vigil.core.db import utcnow
from vigil.core.messaging import emit


def alert_json(alert: Alert) -> dict[str, Any]:
    """The alert as the API and the events show it."""
    return AlertRead.model_validate(alert).model_dump(mode="json")


def announce(session: AsyncSession, alert: Alert, *, created: bool) -> None:
    """`alert.created` or `alert.updated` on `vigil.events` once the transaction commits."""
    emit(session, "alert.created" if created else "alert.updated", alert_json(alert), key=str(alert.id))


def record(
    session: AsyncSession,
    alert: Alert,
    action: str,
    *,
    by: str,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AlertHistory:
    """Add one entry to the alert's history (flushed with the caller's unit of work)."""
    entry = AlertHistory(
        id=uuid.uuid4(), alert_id=alert.id, at=at or utcnow(), action=action, by=by, detail=detail or {}
    )
    session.add(entry)
    return entry


__all__ = ["alert_json", "announce", "record"]
