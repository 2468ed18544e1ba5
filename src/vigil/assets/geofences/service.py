"""Geofence rules: CRUD of circles and polygons on existing sites, each asset's state with them, retention.

Every function takes the request's session and keyword-only arguments, flushes (never commits) and
raises domain errors; the router turns them into responses. The enter/exit evaluation of new locations
is `geofences.evaluation`, called by tracking when it stores them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.assets.assets.service import get_asset
from vigil.assets.geofences import evaluation, shapes
from vigil.assets.geofences.models import Geofence, GeofenceEvent
from vigil.assets.geofences.schemas import GeofenceCreate, GeofenceUpdate
from vigil.assets.sites.service import require_site
from vigil.core.crud import apply_patch, get_or_404, patch_changes
from vigil.core.db import utcnow
from vigil.core.errors import NotFound, ValidationFailed
from vigil.core.pagination import PageParams, paginate
from vigil.core.retention import delete_chunk


class GeofenceNotFound(NotFound):
    title = "Geofence not found"


def _shape(kind: str, center: Any, radius_m: Any, points: Any) -> None:
    try:
        shapes.build(kind, center=center, radius_m=radius_m, points=points)
    except shapes.InvalidShape as exc:
        raise ValidationFailed(str(exc), errors=[
            {"loc": ["body", "polygon" if kind == "polygon" else "radius_m"], "msg": str(exc),
             "type": "invalid_geometry"}]) from exc


def _geometry_columns(kind: str, center: Any, radius_m: Any, points: Any) -> dict[str, Any]:
    if kind == "circle":
        return {"center_x": center[0], "center_y": center[1], "radius_m": radius_m, "polygon": None}
    return {"center_x": None, "center_y": None, "radius_m": None, "polygon": shapes.normalised_ring(points)}


async def create_geofence(session: AsyncSession, *, fence_in: GeofenceCreate) -> Geofence:
    """Draw a circle or polygon geofence on an existing site."""
    await require_site(session, fence_in.site_id)
    _shape(fence_in.kind, fence_in.center, fence_in.radius_m, fence_in.polygon)
    fence = Geofence(
        **fence_in.model_dump(exclude={"center", "radius_m", "polygon"}),
        **_geometry_columns(fence_in.kind, fence_in.center, fence_in.radius_m, fence_in.polygon),
    )
    session.add(fence)
    await session.flush()
    return fence


async def get_geofence(session: AsyncSession, *, geofence_id: uuid.UUID) -> Geofence:
    """One geofence by id, or 404."""
    return await get_or_404(session, Geofence, geofence_id, error=GeofenceNotFound)


async def list_geofences(session: AsyncSession, *, page: PageParams,
                         site_id: uuid.UUID | None = None) -> dict:
    """One page of geofences, optionally of one site."""
    stmt = select(Geofence).order_by(Geofence.name, Geofence.id)
    if site_id is not None:
        stmt = stmt.where(Geofence.site_id == site_id)
    return await paginate(session, stmt, page)


async def update_geofence(session: AsyncSession, *, geofence_id: uuid.UUID,
                          fence_in: GeofenceUpdate) -> Geofence:
    """PATCH a geofence; geometry changes keep each asset's state, so the next location meets the new shape."""
    fence = await get_geofence(session, geofence_id=geofence_id)
    changes = patch_changes(fence_in)
    geometry = {k: changes.pop(k) for k in ("center", "radius_m", "polygon") if k in changes}
    if geometry:
        center = geometry.get("center", None if fence.center_x is None else [fence.center_x, fence.center_y])
        radius = geometry.get("radius_m", fence.radius_m)
        points = geometry.get("polygon", fence.polygon)
        if (fence.kind == "circle" and "polygon" in geometry) or (
                fence.kind == "polygon" and ("center" in geometry or "radius_m" in geometry)):
            raise ValidationFailed(f"A {fence.kind} geofence cannot take those geometry fields.")
        _shape(fence.kind, center, radius, points)
        changes |= _geometry_columns(fence.kind, center, radius, points)
    apply_patch(fence, changes)
    fence.updated_at = utcnow()
    await session.flush()
    return fence


async def delete_geofence(session: AsyncSession, *, geofence_id: uuid.UUID) -> None:
    """Delete a geofence with its per-asset state and events (cascade)."""
    await session.delete(await get_geofence(session, geofence_id=geofence_id))
    await session.flush()


async def geofence_states(session: AsyncSession, *, redis: Redis,
                          asset_id: uuid.UUID) -> list[dict[str, Any]]:
    """Inside/outside of every geofence for one asset, as the evaluator last judged it."""
    await get_asset(session, asset_id=asset_id)
    return await evaluation.states_of(session, redis, asset_id=asset_id)


async def purge_geofence_events(ctx: Any, *, cutoff: datetime, limit: int) -> int:
    """Delete one chunk of enter/exit history older than `cutoff` (current states are kept)."""
    return len(await delete_chunk(ctx, GeofenceEvent.id, GeofenceEvent.at < cutoff, limit=limit))
