"""From stored readings to locations: a debounce queue in Redis, batched estimation, history and live events.

Ingest (consumer or HTTP) calls `schedule()` after its transaction committed: each touched asset goes into
the sorted set `DUE_KEY`, due `debounce_s` later. `ZADD NX` keeps the first due time, so a burst of
readings gives one estimate (and a tag that never stops talking is still estimated every `debounce_s`).
`run_scheduler()` claims due assets atomically (a Lua pop, so several app instances share the work
without doing any of it twice), estimates the batch in a worker thread, and stores it in one unit of work
(falling back to one per asset if that fails): history rows, `location.updated` through the outbox,
geofence transitions with their alerts. After commit, the current locations and fence states go to Redis.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from loguru import logger
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import Table, bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.assets.assets.models import Asset
from vigil.assets.gateways.models import Gateway
from vigil.assets.geofences import evaluation as geofencing
from vigil.assets.metrics import ESTIMATE_BATCH_SECONDS, ESTIMATES
from vigil.assets.tracking.locate import Estimate, Reading, locate, smooth_window
from vigil.assets.tracking.models import LocationEstimate
from vigil.assets.tracking.schemas import LocationRead
from vigil.core.config import Settings
from vigil.core.context import AppContext
from vigil.core.db import session_scope
from vigil.core.messaging import emit

DUE_KEY = "vigil:assets:due"
LOCATION_KEY = "vigil:assets:location:{}"
CLAIM_BATCH = 200

# Atomically take up to ARGV[2] members due at or before ARGV[1].
_CLAIM = """
local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #items > 0 then redis.call('ZREM', KEYS[1], unpack(items)) end
return items
"""


async def schedule(redis: Redis, asset_ids: Iterable[uuid.UUID], debounce_s: float) -> None:
    """Ask for an estimate of each asset `debounce_s` from now, unless one is already pending."""
    ids = [str(i) for i in asset_ids]
    if not ids:
        return
    due = time.time() + debounce_s
    try:
        await redis.zadd(DUE_KEY, dict.fromkeys(ids, due), nx=True)
    except RedisError as exc:  # the readings are stored; the next reading of the tag schedules it again
        logger.warning("cannot schedule estimation of {} assets: {!r}", len(ids), exc)


async def claim_due(redis: Redis, *, now: float | None = None, limit: int = CLAIM_BATCH) -> list[uuid.UUID]:
    """Take the assets whose estimate is due, atomically, so two instances never estimate the same one."""
    items = await redis.eval(_CLAIM, 1, DUE_KEY, str(now if now is not None else time.time()), str(limit))
    return [uuid.UUID(i.decode() if isinstance(i, bytes) else i) for i in items]


# --- loading and computing -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GatewayInfo:
    id: uuid.UUID
    site_id: uuid.UUID
    x: float
    y: float
    tx_power: float
    path_loss_exponent: float


@dataclass(frozen=True, slots=True)
class Located:
    asset_id: uuid.UUID
    site_id: uuid.UUID
    estimate: Estimate
    at: datetime  # the newest reading the estimate rests on


_WINDOW_ROWS = text("""
    SELECT o.asset_id, o.gateway_id, o.observed_at, o.rssi
    FROM unnest(CAST(:ids AS uuid[])) AS t(asset_id)
    CROSS JOIN LATERAL (SELECT max(observed_at) AS newest FROM observations WHERE asset_id = t.asset_id) n
    JOIN observations o ON o.asset_id = t.asset_id
     AND o.observed_at >= n.newest - make_interval(secs => :window_s) AND o.observed_at <= n.newest
""")


Window = dict[uuid.UUID, list[tuple[uuid.UUID, datetime, float]]]  # asset -> (gateway, time, rssi)


async def load_window(session: AsyncSession, asset_ids: list[uuid.UUID], window_s: float
                      ) -> tuple[Window, dict[uuid.UUID, GatewayInfo]]:
    """Each asset's readings within `window_s` of its newest one, and the gateways that heard them."""
    rows = (await session.execute(_WINDOW_ROWS, {"ids": asset_ids, "window_s": window_s})).all()
    per: Window = {}
    for asset_id, gateway_id, observed_at, rssi in rows:
        per.setdefault(asset_id, []).append((gateway_id, observed_at, rssi))
    gateway_ids = {gw for items in per.values() for gw, _, _ in items}
    gateways = {
        g.id: GatewayInfo(g.id, g.site_id, g.x, g.y, g.tx_power, g.path_loss_exponent)
        for g in (await session.scalars(select(Gateway).where(Gateway.id.in_(gateway_ids)))).all()
    } if gateway_ids else {}
    return per, gateways


def estimate_batch(windows: Window, gateways: dict[uuid.UUID, GatewayInfo], *, window_s: float,
                   max_readings: int, method: str) -> list[Located]:
    """CPU part, run in a worker thread: smooth per gateway, keep the site that hears the tag best, locate."""
    out = []
    for asset_id, items in windows.items():
        newest = max(t for _, t, _ in items)
        smoothed = smooth_window(((gw, t.timestamp(), rssi) for gw, t, rssi in items if gw in gateways),
                                 window_s=window_s, max_readings=max_readings, method=method)
        if not smoothed:
            continue
        strongest = max(smoothed, key=lambda gw: smoothed[gw])
        site_id = gateways[strongest].site_id  # type: ignore[index]
        readings = [Reading(g.x, g.y, rssi, g.tx_power, g.path_loss_exponent)
                    for gw, rssi in smoothed.items() if (g := gateways[gw]).site_id == site_id]  # type: ignore[index]
        try:
            estimate = locate(readings)
        except (ValueError, ArithmeticError) as exc:
            logger.warning("cannot locate asset {}: {!r}", asset_id, exc)
            continue
        out.append(Located(asset_id, site_id, estimate, newest))
    return out


# --- storing ---------------------------------------------------------------------------------


def location_payload(row: LocationEstimate, tag_id: str) -> dict[str, Any]:
    """The `location.updated` event body: the location as the API reads it, plus the tag id."""
    return LocationRead.model_validate(row).model_dump(mode="json") | {"tag_id": tag_id}


@dataclass(frozen=True, slots=True)
class Stored:
    row: LocationEstimate
    asset: Asset
    fences: dict[str, Any]  # fence states to mirror in Redis


_ASSETS = cast(Table, Asset.__table__)  # a declarative model's __table__ is a Table
_TOUCH_ASSET = (
    update(_ASSETS).where(_ASSETS.c.id == bindparam("b_id")).values(
        located_at=bindparam("b_at"),
        last_seen_at=func.greatest(_ASSETS.c.last_seen_at, bindparam("b_at")),
        updated_at=_ASSETS.c.updated_at,  # a new location is not an edit of the asset
    )
)


async def store_estimates(session: AsyncSession, results: list[Located]) -> list[Stored]:
    """History rows, `location.updated` events and geofence transitions for a batch, in the caller's
    transaction. An estimate not newer than the asset's newest stored one (a replay, a race) is skipped."""
    ids = sorted({r.asset_id for r in results})
    assets = {a.id: a for a in (await session.scalars(
        select(Asset).where(Asset.id.in_(ids)).order_by(Asset.id).with_for_update())).all()}
    pairs: list[tuple[Asset, LocationEstimate]] = []
    for located in results:
        asset = assets.get(located.asset_id)  # None: deleted meanwhile
        if asset is None or (asset.located_at is not None and asset.located_at >= located.at):
            continue
        est = located.estimate
        pairs.append((asset, LocationEstimate(
            asset_id=asset.id, site_id=located.site_id, x=round(est.x, 3), y=round(est.y, 3),
            method=est.method, accuracy_m=round(est.accuracy_m, 3), gateways=est.gateways,
            estimated_at=located.at)))
    if not pairs:
        return []
    session.add_all([row for _, row in pairs])
    await session.flush()
    await session.execute(_TOUCH_ASSET, [{"b_id": a.id, "b_at": row.estimated_at} for a, row in pairs])
    for asset, row in pairs:
        emit(session, "location.updated", location_payload(row, asset.tag_id), key=str(asset.id))
        ESTIMATES.labels(row.method).inc()
    fences = await geofencing.evaluate(session, pairs)
    return [Stored(row, asset, fences.get(asset.id, {})) for asset, row in pairs]


async def cached_location(redis: Redis, asset_id: uuid.UUID) -> LocationRead | None:
    """The current location from the Redis copy, or None when absent or Redis is down (readers fall back)."""
    try:
        raw = await redis.get(LOCATION_KEY.format(asset_id))
    except RedisError:
        return None
    return LocationRead.model_validate(json.loads(raw)) if raw else None


async def _store(ctx: AppContext, results: list[Located]) -> list[Stored]:
    """One transaction for the batch; if it fails, one per asset, so one bad asset cannot block the rest."""
    try:
        async with session_scope(ctx.sessionmaker) as session:
            return await store_estimates(session, results)
    except Exception as exc:
        if len(results) == 1:
            logger.opt(exception=exc).error("storing the estimate of asset {} failed", results[0].asset_id)
            return []
        logger.warning("storing {} estimates at once failed ({!r}); storing them one by one",
                       len(results), exc)
        return [stored for located in results for stored in await _store(ctx, [located])]


async def estimate_assets(ctx: AppContext, asset_ids: list[uuid.UUID]) -> int:
    """Estimate and store the given assets; returns how many new locations were stored."""
    settings: Settings = ctx.settings
    async with ctx.sessionmaker() as session:
        windows, gateways = await load_window(session, asset_ids, settings.assets_window_s)
    if not windows:
        return 0
    started = time.perf_counter()
    results = await asyncio.to_thread(
        estimate_batch, windows, gateways, window_s=settings.assets_window_s,
        max_readings=settings.assets_window_max_readings, method=settings.assets_smoothing,
    )
    ESTIMATE_BATCH_SECONDS.observe(time.perf_counter() - started)
    stored = await _store(ctx, results) if results else []
    if stored:
        ttl_s = int(timedelta(days=settings.assets_retention_days).total_seconds())
        try:  # after commit: the current location and fence states, for cheap reads
            async with ctx.redis.pipeline(transaction=False) as pipe:
                for item in stored:
                    pipe.set(LOCATION_KEY.format(item.asset.id),
                             LocationRead.model_validate(item.row).model_dump_json(), ex=ttl_s)
                    geofencing.mirror_states(pipe, item.asset.id, item.fences)
                await pipe.execute()
        except RedisError as exc:  # readers fall back to the tables
            logger.warning("cannot cache {} locations in Redis: {!r}", len(stored), exc)
    logger.debug("estimated {} assets, stored {} new locations", len(results), len(stored))
    return len(stored)


async def run_scheduler(ctx: AppContext) -> None:
    """Background task: estimate due assets as they come due, until cancelled."""
    tick = min(max(ctx.settings.assets_debounce_s / 4, 0.02), 0.25)
    logger.info("assets estimation scheduler running (debounce {}s)", ctx.settings.assets_debounce_s)
    while True:
        try:
            due = await claim_due(ctx.redis)
        except RedisError as exc:
            logger.warning("estimation scheduler cannot reach Redis: {!r}", exc)
            await asyncio.sleep(1.0)
            continue
        if not due:
            await asyncio.sleep(tick)
            continue
        try:
            await estimate_assets(ctx, due)
        except asyncio.CancelledError:
            # Shutting down mid-batch: hand the claimed assets back (a re-run stores nothing twice).
            await schedule(ctx.redis, due, 0.0)
            raise
        except Exception as exc:  # the database is down: put them back and try again shortly
            logger.opt(exception=exc).error("estimation of {} assets failed; retrying", len(due))
            await schedule(ctx.redis, due, 1.0)
            await asyncio.sleep(1.0)
