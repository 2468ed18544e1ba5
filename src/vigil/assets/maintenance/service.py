"""Maintenance rules: CRUD of records on existing assets; done or postponed resolves the overdue alert.

The overdue alert itself is raised by the rules check (`rules.checks`), under `maintenance_subject`.
Every function takes the request's session and keyword-only arguments, flushes (never commits) and
raises domain errors; the router turns them into responses.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.alerts import service as alerts
from vigil.assets.assets.service import require_asset
from vigil.assets.maintenance.models import Maintenance
from vigil.assets.maintenance.schemas import MaintenanceCreate, MaintenanceUpdate
from vigil.core.crud import apply_patch, get_or_404
from vigil.core.db import utcnow
from vigil.core.errors import NotFound
from vigil.core.pagination import PageParams, paginate


class MaintenanceNotFound(NotFound):
    title = "Maintenance record not found"


def maintenance_subject(record_id: uuid.UUID) -> str:
    """The alert subject of a record's overdue alert, so raising and resolving it name the same alert."""
    return f"maintenance:{record_id}"


async def create_maintenance(session: AsyncSession, *, record_in: MaintenanceCreate) -> Maintenance:
    """Schedule maintenance of an existing asset."""
    await require_asset(session, record_in.asset_id)
    record = Maintenance(**record_in.model_dump())
    session.add(record)
    await session.flush()
    return record


async def get_maintenance(session: AsyncSession, *, record_id: uuid.UUID) -> Maintenance:
    """One maintenance record by id, or 404."""
    return await get_or_404(session, Maintenance, record_id, error=MaintenanceNotFound, what="Maintenance record")


async def list_maintenance(session: AsyncSession, *, page: PageParams, asset_id: uuid.UUID | None = None,
                           overdue: bool | None = None, done: bool | None = None) -> dict:
    """One page of maintenance records by due date, filtered by asset, overdue and done."""
    stmt = select(Maintenance).order_by(Maintenance.due_at, Maintenance.id)
    if asset_id is not None:
        stmt = stmt.where(Maintenance.asset_id == asset_id)
    if done is not None:
        stmt = stmt.where(Maintenance.done_at.is_not(None) if done else Maintenance.done_at.is_(None))
    if overdue is not None:
        is_overdue = Maintenance.done_at.is_(None) & (Maintenance.due_at < utcnow())
        stmt = stmt.where(is_overdue if overdue else ~is_overdue)
    return await paginate(session, stmt, page)


async def update_maintenance(session: AsyncSession, *, record_id: uuid.UUID,
                             record_in: MaintenanceUpdate) -> Maintenance:
    """Done, or moved to a later due date: the overdue alert (if any) is resolved and may be raised again."""
    record = await get_maintenance(session, record_id=record_id)
    apply_patch(record, record_in)
    if record.overdue_alerted_at is not None and (record.done_at is not None or record.due_at > utcnow()):
        await alerts.resolve_active(session, source="asset", kind="maintenance_overdue",
                                    subject=maintenance_subject(record.id))
        record.overdue_alerted_at = None
    await session.flush()
    return record


async def delete_maintenance(session: AsyncSession, *, record_id: uuid.UUID) -> None:
    """Delete a record, resolving its overdue alert if one is active."""
    record = await get_maintenance(session, record_id=record_id)
    if record.overdue_alerted_at is not None:
        await alerts.resolve_active(session, source="asset", kind="maintenance_overdue",
                                    subject=maintenance_subject(record.id))
    await session.delete(record)
    await session.flush()
