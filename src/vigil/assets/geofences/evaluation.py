"""Geofence evaluation for a new location: state per (asset, fence) persisted and mirrored in Redis,
enter/exit history, and alerts through `alerts.service` as each fence's `alert_on` says."""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime
from typing import Any

from loguru import logger
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.alerts import service as alerts
from vigil.assets.assets.models import Asset
from vigil.assets.geofences import shapes
from vigil.assets.geofences.models import Geofence, GeofenceEvent, GeofenceState
from vigil.assets.metrics import GEOFENCE_TRANSITIONS
from vigil.assets.tracking.models import LocationEstimate

STATE_KEY = "vigil:assets:fences:{}"
_SHAPES: dict[tuple[uuid.UUID, datetime], shapes.Shape] = {}


def shape_of(fence: Geofence) -> shapes.Shape:
    """The fence's prepared shape, built once per version of the fence."""
    key = (fence.id, fence.updated_at)
    shape = _SHAPES.get(key)
    if shape is None:
        if len(_SHAPES) > 10_000:
            _SHAPES.clear()
        center = None if fence.center_x is None or fence.center_y is None else (fence.center_x, fence.center_y)
        shape = shapes.build(fence.kind, center=center, radius_m=fence.radius_m, points=fence.polygon)
        _SHAPES[key] = shape
    return shape


def alert_subject(fence_id: uuid.UUID, asset_id: uuid.UUID) -> str:
    """The alert subject of one asset with one fence, so an enter alert and its exit resolve the same one."""
    return f"{fence_id}:{asset_id}"


async def evaluate(session: AsyncSession, pairs: list[tuple[Asset, LocationEstimate]]
                   ) -> dict[uuid.UUID, dict[str, Any]]:
    """Advance each asset's state with every fence of its location's site, in the caller's transaction.

    A fence of another site that the asset was inside is left: its location is now at a different site.
    Returns, per asset, the fence states to mirror in Redis once the transaction has committed.
    """
    asset_ids = [a.id for a, _ in pairs]
    still_inside = select(GeofenceState.geofence_id).where(GeofenceState.asset_id.in_(asset_ids),
                                                           GeofenceState.inside)
    fences = (await session.scalars(select(Geofence).where(or_(
        Geofence.site_id.in_({loc.site_id for _, loc in pairs}), Geofence.id.in_(still_inside),
    )).order_by(Geofence.id))).all()
    if not fences:
        return {}
    by_site: dict[uuid.UUID, list[Geofence]] = {}
    for fence in fences:
        by_site.setdefault(fence.site_id, []).append(fence)
    states: dict[uuid.UUID, dict[uuid.UUID, GeofenceState]] = {}
    rows = (await session.scalars(select(GeofenceState).where(GeofenceState.asset_id.in_(asset_ids)))).all()
    for state in rows:
        states.setdefault(state.asset_id, {})[state.geofence_id] = state
    changed: list[dict[str, Any]] = []
    mirrored: dict[uuid.UUID, dict[str, Any]] = {}
    for asset, location in pairs:
        mine = states.get(asset.id, {})
        left_behind = [f for f in fences
                       if f.site_id != location.site_id and f.id in mine and mine[f.id].inside]
        for fence in [*by_site.get(location.site_id, []), *left_behind]:
            row = mine.get(fence.id)
            before = None if row is None else shapes.FenceState(row.inside, row.since, row.pending_since)
            here = fence.site_id == location.site_id
            depth = shape_of(fence).depth(location.x, location.y) if here else -math.inf
            after, event = shapes.step(before, depth, location.estimated_at, margin_m=fence.margin_m,
                                       dwell_s=fence.dwell_s)
            if after != before:
                changed.append({"asset_id": asset.id, "geofence_id": fence.id, "inside": after.inside,
                                "since": after.since, "pending_since": after.pending_since,
                                "updated_at": location.estimated_at})
            if event is not None:
                await _transition(session, asset=asset, fence=fence, location=location, event=event,
                                  depth=depth if here else None)
            mirrored.setdefault(asset.id, {})[str(fence.id)] = {
                "geofence_id": str(fence.id), "inside": after.inside, "since": after.since.isoformat(),
                "pending_since": after.pending_since and after.pending_since.isoformat()}
    if changed:
        stmt = insert(GeofenceState)
        await session.execute(stmt.on_conflict_do_update(
            index_elements=[GeofenceState.asset_id, GeofenceState.geofence_id],
            set_={name: stmt.excluded[name] for name in ("inside", "since", "pending_since", "updated_at")},
        ), changed)
    return mirrored


async def _transition(session: AsyncSession, *, asset: Asset, fence: Geofence, location: LocationEstimate,
                      event: str, depth: float | None) -> None:
    """Record the crossing and raise/resolve alerts. `depth` None: the asset is now at another site."""
    session.add(GeofenceEvent(asset_id=asset.id, geofence_id=fence.id, kind=event, at=location.estimated_at,
                              x=location.x, y=location.y))
    GEOFENCE_TRANSITIONS.labels(event).inc()
    logger.info("asset {} ({}) {} geofence {} ({}) at ({:.2f}, {:.2f})", asset.id, asset.tag_id,
                "entered" if event == "enter" else "left", fence.id, fence.name, location.x, location.y)
    subject = alert_subject(fence.id, asset.id)
    opposite = "exit" if event == "enter" else "enter"
    if fence.auto_resolve:
        await alerts.resolve_active(session, source="geofence", kind=f"geofence_{opposite}", subject=subject)
    if event in fence.alert_on:
        verb = "entered" if event == "enter" else "left"
        await alerts.raise_alert(
            session, source="geofence", kind=f"geofence_{event}", severity=fence.severity, subject=subject,
            title=f"{asset.name} ({asset.tag_id}) {verb} {fence.name}", at=location.estimated_at,
            data={"asset_id": str(asset.id), "tag_id": asset.tag_id, "geofence_id": str(fence.id),
                  "geofence": fence.name, "site_id": str(fence.site_id), "event": event,
                  "x": location.x, "y": location.y, "depth_m": None if depth is None else round(depth, 3),
                  "location_site_id": str(location.site_id),
                  "at": location.estimated_at.isoformat()},
        )


def mirror_states(pipe: Any, asset_id: uuid.UUID, states: dict[str, Any]) -> None:
    """Queue on a Redis pipeline: the fence states of one asset as a hash, for cheap reads."""
    if states:
        pipe.hset(STATE_KEY.format(asset_id), mapping={k: json.dumps(v) for k, v in states.items()})


async def states_of(session: AsyncSession, redis: Redis, *, asset_id: uuid.UUID) -> list[dict[str, Any]]:
    """Current fence states of an asset: the Redis mirror, else the table."""
    try:
        raw = await redis.hgetall(STATE_KEY.format(asset_id))
    except RedisError:
        raw = {}
    if raw:
        # The mirror may still hold fences deleted since; the table knows which exist.
        mirrored = [json.loads(v) for v in raw.values()]
        live = {str(i) for i in (await session.scalars(select(Geofence.id).where(
            Geofence.id.in_([uuid.UUID(m["geofence_id"]) for m in mirrored])))).all()}
        return sorted((m for m in mirrored if m["geofence_id"] in live), key=lambda m: m["geofence_id"])
    rows = (await session.scalars(select(GeofenceState).where(GeofenceState.asset_id == asset_id)
                                  .order_by(GeofenceState.geofence_id))).all()
    return [{"geofence_id": str(r.geofence_id), "inside": r.inside, "since": r.since.isoformat(),
             "pending_since": r.pending_since and r.pending_since.isoformat()} for r in rows]
