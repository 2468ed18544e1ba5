"""Alert rules: raise (deduplicated upsert), acknowledge, resolve; every change announced via the outbox.

Other domains call `raise_alert` and `resolve_active`; nothing else writes the alerts table.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import case, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.alerts.models import ACTIVE_PREDICATE, SEVERITIES, Alert
from vigil.alerts.schemas import AlertRead
from vigil.core.messaging import emit
from vigil.core.db import utcnow
from vigil.core.errors import NotFound, ValidationFailed
from vigil.core.pagination import PageParams, paginate

ACTIVE = text(ACTIVE_PREDICATE)


class AlertNotFound(NotFound):
    title = "Alert not found"


def _rank(column: Any) -> Any:
    return case({s: i for i, s in enumerate(SEVERITIES)}, value=column, else_=0)


def announce(session: AsyncSession, alert: Alert, *, created: bool) -> None:
    emit(session, "alert.created" if created else "alert.updated",
         AlertRead.model_validate(alert).model_dump(mode="json"), key=str(alert.id))


async def raise_alert(
    session: AsyncSession,
    *,
    source: str,
    kind: str,
    severity: str,
    title: str,
    subject: str = "",
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> tuple[Alert, bool]:
    """Open an alert, or bump the active one with the same (source, kind, subject).

    A repeat adds to `count`, moves `last_seen_at`, keeps the higher severity and takes the newest
    title and data. One INSERT ... ON CONFLICT against the partial unique index, so it is safe
    under concurrency. Returns the alert and whether it was created.
    """
    if severity not in SEVERITIES:
        raise ValidationFailed(f"severity must be one of {', '.join(SEVERITIES)}")
    seen = at or utcnow()
    now = utcnow()
    stmt = insert(Alert).values(
        id=uuid.uuid4(), source=source, kind=kind, subject=subject, severity=severity, status="open",
        title=title, data=data or {}, count=1, last_seen_at=seen, created_at=now, updated_at=now,
    )
    excluded = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[Alert.source, Alert.kind, Alert.subject],
        index_where=ACTIVE,  # a literal: it must match the partial index's predicate
        set_={
            "count": Alert.count + 1,
            "last_seen_at": func.greatest(Alert.last_seen_at, excluded.last_seen_at),
            "severity": case((_rank(excluded.severity) > _rank(Alert.severity), excluded.severity),
                             else_=Alert.severity),
            "title": excluded.title,
            "data": excluded.data,
            "updated_at": excluded.updated_at,
        },
    ).returning(Alert, literal_column("xmax = 0").label("inserted"))
    row = (await session.execute(stmt.execution_options(populate_existing=True))).one()
    alert, created = row[0], bool(row[1])
    announce(session, alert, created=created)
    return alert, created


async def get_alert(session: AsyncSession, *, alert_id: uuid.UUID) -> Alert:
    alert = await session.get(Alert, alert_id)
    if alert is None:
        raise AlertNotFound(f"Alert {alert_id} does not exist.")
    return alert


async def list_alerts(
    session: AsyncSession,
    *,
    page: PageParams,
    status: str | None = None,
    severity: str | None = None,
    source: str | None = None,
    kind: str | None = None,
    subject: str | None = None,
    since: datetime | None = None,
) -> dict:
    """Newest activity first."""
    stmt = select(Alert)
    for column, value in ((Alert.status, status), (Alert.severity, severity), (Alert.source, source),
                          (Alert.kind, kind), (Alert.subject, subject)):
        if value is not None:
            stmt = stmt.where(column == value)
    if since is not None:
        stmt = stmt.where(Alert.last_seen_at >= since)
    return await paginate(session, stmt.order_by(Alert.last_seen_at.desc(), Alert.id), page)


async def _locked(session: AsyncSession, alert_id: uuid.UUID) -> Alert:
    alert = await session.scalar(select(Alert).where(Alert.id == alert_id).with_for_update())
    if alert is None:
        raise AlertNotFound(f"Alert {alert_id} does not exist.")
    return alert


async def acknowledge(session: AsyncSession, *, alert_id: uuid.UUID, by: str | None = None) -> Alert:
    """Open -> acknowledged. Acknowledging again, or a resolved alert, changes nothing."""
    alert = await _locked(session, alert_id)
    if alert.status == "open":
        alert.status, alert.acknowledged_at, alert.acknowledged_by = "acknowledged", utcnow(), by
        await session.flush()
        announce(session, alert, created=False)
    return alert


async def resolve(session: AsyncSession, *, alert_id: uuid.UUID, by: str | None = None) -> Alert:
    """Any active alert -> resolved. Resolving again changes nothing."""
    alert = await _locked(session, alert_id)
    if alert.status != "resolved":
        await _mark_resolved(session, alert, by=by)
    return alert


async def _mark_resolved(session: AsyncSession, alert: Alert, *, by: str | None) -> None:
    alert.status, alert.resolved_at, alert.resolved_by = "resolved", utcnow(), by
    await session.flush()
    announce(session, alert, created=False)


async def resolve_active(session: AsyncSession, *, source: str, kind: str, subject: str = "",
                         by: str = "auto") -> Alert | None:
    """Resolve the active alert of (source, kind, subject), if any (e.g. a tag back inside a fence)."""
    alert = await session.scalar(
        select(Alert).where(Alert.source == source, Alert.kind == kind, Alert.subject == subject, ACTIVE)
        .with_for_update()
    )
    if alert is not None:
        await _mark_resolved(session, alert, by=by)
    return alert


# --- raw messages of the alert topics (debugging aid for pipelines) --------------------------

RECENT_MESSAGES_KEY = "vigil:alerts:recent_messages"


async def remember_message(redis: Redis, *, message: dict[str, Any], keep: int) -> None:
    """Keep one raw alert-topic message in the newest-first list of the last `keep`."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.lpush(RECENT_MESSAGES_KEY, json.dumps(message, default=str))
        pipe.ltrim(RECENT_MESSAGES_KEY, 0, keep - 1)
        await pipe.execute()


async def recent_messages(redis: Redis, *, limit: int) -> list[dict[str, Any]]:
    """The newest raw messages seen on the alert topics, newest first."""
    return [json.loads(raw) for raw in await redis.lrange(RECENT_MESSAGES_KEY, 0, limit - 1)]


__all__ = ["AlertNotFound", "acknowledge", "get_alert", "list_alerts", "raise_alert", "recent_messages",
           "remember_message", "resolve", "resolve_active"]


# --- retention (run by core.retention; listed in registry.retention_policies) ----------------


async def purge_resolved(ctx: Any, *, cutoff: Any, limit: int) -> int:
    """Delete one chunk of alerts resolved before `cutoff`; open and acknowledged ones always stay."""
    from vigil.core.retention import delete_chunk

    return len(await delete_chunk(ctx, Alert.id, Alert.status == "resolved", Alert.resolved_at < cutoff,
                                  limit=limit))


def retention_policies() -> list[Any]:
    """What the alerts domain lets retention purge."""
    from vigil.core.retention import RetentionPolicy

    return [RetentionPolicy("resolved_alerts", "retention_resolved_alerts_days", purge_resolved)]
