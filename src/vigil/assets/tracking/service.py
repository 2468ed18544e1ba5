"""Tracking rules: observations in (ingest, purge), locations out (current, history), and the reports.

Every function takes the request's session and keyword-only arguments, flushes (never commits) and
raises domain errors; the router turns them into responses. The estimation itself, from stored readings
to locations, runs in the background: `tracking.estimation`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from loguru import logger
from redis.asyncio import Redis
from sqlalchemy import String, cast, or_, select, text
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.assets.assets.models import Asset
from vigil.assets.assets.service import get_asset
from vigil.assets.gateways.models import Gateway
from vigil.assets.geofences.models import Geofence, GeofenceEvent
from vigil.assets.metrics import OBSERVATIONS
from vigil.assets.tracking import analytics, estimation
from vigil.assets.tracking.models import LocationEstimate
from vigil.assets.tracking.schemas import IngestResult, ObservationIn
from vigil.core.db import utcnow
from vigil.core.errors import NotFound, PayloadTooLarge, ValidationFailed
from vigil.core.pagination import PageParams, paginate
from vigil.core.retention import delete_chunk


class LocationNotFound(NotFound):
    title = "No location yet"


# --- observations ----------------------------------------------------------------------------


class BatchTooLarge(PayloadTooLarge):
    title = "Too many observations"


def in_the_future(observations: Sequence[ObservationIn], *, now: datetime, max_future_s: float) -> list[int]:
    """Indexes of readings stamped further in the future than clocks may drift."""
    limit = now + timedelta(seconds=max_future_s)
    return [i for i, o in enumerate(observations) if o.observed_at > limit]


def _gateway_key(value: str) -> str:
    """Gateways are referenced by name or by id; ids compare in canonical text form."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return value


_INSERT_OBSERVATIONS = text("""
    INSERT INTO observations (asset_id, observed_at, gateway_id, rssi, battery, received_at)
    SELECT a.id, i.observed_at, g.id, i.rssi, i.battery, now()
    FROM unnest(CAST(:tags AS text[]), CAST(:gateways AS text[]), CAST(:rssi AS float8[]),
                CAST(:observed_at AS timestamptz[]), CAST(:battery AS float8[]))
         AS i(tag_id, gateway, rssi, observed_at, battery)
    JOIN assets a ON a.tag_id = i.tag_id
    JOIN gateways g ON g.name = i.gateway OR CAST(g.id AS text) = i.gateway
    ON CONFLICT DO NOTHING
    RETURNING asset_id, observed_at
""")

_UPDATE_BATTERY = text("""
    UPDATE assets a SET battery = v.battery, battery_reported_at = v.observed_at
    FROM (SELECT DISTINCT ON (tag_id) tag_id, battery, observed_at
          FROM unnest(CAST(:tags AS text[]), CAST(:battery AS float8[]), CAST(:observed_at AS timestamptz[]))
               AS i(tag_id, battery, observed_at)
          ORDER BY tag_id, observed_at DESC) v
    WHERE a.tag_id = v.tag_id AND (a.battery_reported_at IS NULL OR a.battery_reported_at < v.observed_at)
""")


async def ingest_observations(
    session: AsyncSession, *, observations: Sequence[ObservationIn], max_batch: int, max_future_s: float,
) -> tuple[IngestResult, dict[uuid.UUID, datetime]]:
    """Store a batch of raw readings in one statement; readings of unknown tags or gateways are dropped.

    Returns the counts and, per asset that got new readings, its newest reading time (the caller schedules
    estimation for those once the transaction has committed). A reading seen before is a no-op.
    """
    if len(observations) > max_batch:
        raise BatchTooLarge(f"At most {max_batch} observations per request; got {len(observations)}.")
    late = in_the_future(observations, now=utcnow(), max_future_s=max_future_s)
    if late:
        raise ValidationFailed("Observations stamped in the future.", errors=[
            {"loc": ["body", "observations", i, "observed_at"], "msg": "too far in the future",
             "type": "future"}
            for i in late[:20]])
    if not observations:
        empty = IngestResult(received=0, stored=0, duplicates=0, unknown_tags=[], unknown_gateways=[],
                             dropped=0)
        return empty, {}
    tags = [o.tag_id for o in observations]
    gateways = [_gateway_key(o.gateway_id) for o in observations]
    times = [o.observed_at for o in observations]
    rows = (await session.execute(_INSERT_OBSERVATIONS, {
        "tags": tags, "gateways": gateways, "rssi": [o.rssi for o in observations], "observed_at": times,
        "battery": [o.battery for o in observations],
    })).all()
    touched: dict[uuid.UUID, datetime] = {}
    for asset_id, observed_at in rows:
        if asset_id not in touched or observed_at > touched[asset_id]:
            touched[asset_id] = observed_at
    with_battery = [o for o in observations if o.battery is not None]
    if with_battery:
        await session.execute(_UPDATE_BATTERY, {
            "tags": [o.tag_id for o in with_battery], "battery": [o.battery for o in with_battery],
            "observed_at": [o.observed_at for o in with_battery],
        })
    unknown_tags: list[str] = []
    unknown_gateways: list[str] = []
    dropped = 0
    if len(rows) < len(observations):  # duplicates or unknown references: find out which
        known_tags = set((await session.scalars(
            select(Asset.tag_id).where(Asset.tag_id.in_(set(tags))))).all())
        known_gateways: set[str] = set()
        for gw_id, name in (await session.execute(select(Gateway.id, Gateway.name).where(
                or_(Gateway.name.in_(set(gateways)), cast(Gateway.id, String).in_(set(gateways)))))).all():
            known_gateways |= {str(gw_id), name}
        unknown_tags = sorted(set(tags) - known_tags)
        unknown_gateways = sorted(set(gateways) - known_gateways)
        dropped = sum(1 for t, g in zip(tags, gateways, strict=True) if t not in known_tags or g not in known_gateways)
        for t, g in zip(tags, gateways, strict=True):
            if t not in known_tags:
                OBSERVATIONS.labels("unknown_tag").inc()
            elif g not in known_gateways:
                OBSERVATIONS.labels("unknown_gateway").inc()
    duplicates = len(observations) - len(rows) - dropped
    OBSERVATIONS.labels("stored").inc(len(rows))
    if duplicates:
        OBSERVATIONS.labels("duplicate").inc(duplicates)
    if dropped:
        logger.info("observations: dropped {} of {} (unknown tags {}, unknown gateways {})", dropped,
                    len(observations), unknown_tags[:10], unknown_gateways[:10])
    result = IngestResult(received=len(observations), stored=len(rows), duplicates=duplicates,
                          unknown_tags=unknown_tags, unknown_gateways=unknown_gateways, dropped=dropped)
    return result, touched


PURGE_CHUNK = 10_000


async def purge_observations(session: AsyncSession, *, older_than: datetime, limit: int = PURGE_CHUNK) -> int:
    """Delete up to `limit` raw readings older than the cutoff; returns how many went."""
    result = await session.execute(text(
        "DELETE FROM observations WHERE ctid IN "
        "(SELECT ctid FROM observations WHERE observed_at < :cutoff LIMIT :limit)"
    ), {"cutoff": older_than, "limit": limit})
    return result.rowcount or 0  # type: ignore[attr-defined]


# --- locations -------------------------------------------------------------------------------


async def current_location(session: AsyncSession, *, redis: Redis, asset_id: uuid.UUID) -> Any:
    """The newest estimate: from the Redis copy the estimator keeps, else from the history table."""
    await get_asset(session, asset_id=asset_id)
    cached = await estimation.cached_location(redis, asset_id)
    if cached is not None:
        return cached
    row = await session.scalar(
        select(LocationEstimate).where(LocationEstimate.asset_id == asset_id)
        .order_by(LocationEstimate.estimated_at.desc(), LocationEstimate.id.desc()).limit(1)
    )
    if row is None:
        raise LocationNotFound(f"Asset {asset_id} has not been located yet.")
    return row


async def location_history(session: AsyncSession, *, asset_id: uuid.UUID, page: PageParams,
                           since: datetime | None = None, until: datetime | None = None) -> dict:
    """One page of an asset's location history, newest first, optionally within a time range."""
    await get_asset(session, asset_id=asset_id)
    stmt = select(LocationEstimate).where(LocationEstimate.asset_id == asset_id)
    if since is not None:
        stmt = stmt.where(LocationEstimate.estimated_at >= since)
    if until is not None:
        stmt = stmt.where(LocationEstimate.estimated_at <= until)
    return await paginate(session, stmt.order_by(LocationEstimate.estimated_at.desc(),
                                                 LocationEstimate.id.desc()), page)


async def purge_locations(ctx: Any, *, cutoff: datetime, limit: int) -> int:
    """Delete one chunk of location history older than `cutoff` (the asset row keeps its latest fix)."""
    return len(await delete_chunk(ctx, LocationEstimate.id, LocationEstimate.estimated_at < cutoff, limit=limit))


# --- analytics -------------------------------------------------------------------------------


def _range(since: datetime | None, until: datetime | None, *,
           default_hours: float = 24) -> tuple[datetime, datetime]:
    now = utcnow()
    until = min(until or now, now)
    since = since or until - timedelta(hours=default_hours)
    if since >= until:
        raise ValidationFailed("`since` must be before `until` (and before now).", errors=[
            {"loc": ["query", "since"], "msg": "empty range", "type": "range"}])
    return since, until


async def dwell_report(session: AsyncSession, *, asset_id: uuid.UUID, since: datetime | None,
                       until: datetime | None) -> dict[str, Any]:
    """Seconds inside each geofence (and visits) over a range, from the enter/exit history."""
    await get_asset(session, asset_id=asset_id)
    since, until = _range(since, until)
    before = (await session.execute(
        select(GeofenceEvent.geofence_id, GeofenceEvent.kind)
        .where(GeofenceEvent.asset_id == asset_id, GeofenceEvent.at < since)
        .ext(distinct_on(GeofenceEvent.geofence_id))
        .order_by(GeofenceEvent.geofence_id, GeofenceEvent.at.desc(), GeofenceEvent.id.desc())
    )).all()
    events = (await session.execute(
        select(GeofenceEvent.geofence_id, GeofenceEvent.kind, GeofenceEvent.at)
        .where(GeofenceEvent.asset_id == asset_id, GeofenceEvent.at >= since, GeofenceEvent.at <= until)
        .order_by(GeofenceEvent.at, GeofenceEvent.id)
    )).all()
    totals = analytics.dwell([(fid, kind, at) for fid, kind, at in events], since=since, until=until,
                             inside_at_start=[fid for fid, kind in before if kind == "enter"])
    names = dict((await session.execute(select(Geofence.id, Geofence.name)
                                        .where(Geofence.id.in_(list(totals))))).all()) if totals else {}
    rows: list[dict[str, Any]] = [
        {"geofence_id": fid, "name": names.get(fid, ""), "seconds": round(sec, 3), "visits": n}
        for fid, (sec, n) in totals.items()
    ]
    items = sorted(rows, key=lambda i: (-i["seconds"], str(i["geofence_id"])))
    return {"asset_id": asset_id, "since": since, "until": until, "geofences": items,
            "total_seconds": round(sum(i["seconds"] for i in items), 3)}


async def utilisation_report(session: AsyncSession, *, asset_id: uuid.UUID, since: datetime | None,
                             until: datetime | None, gap_s: float, moving_m: float) -> dict[str, Any]:
    """Share of a range the asset was seen, and moving, from its location history."""
    await get_asset(session, asset_id=asset_id)
    since, until = _range(since, until)
    previous = select(LocationEstimate.estimated_at, LocationEstimate.x, LocationEstimate.y).where(
        LocationEstimate.asset_id == asset_id, LocationEstimate.estimated_at < since
    ).order_by(LocationEstimate.estimated_at.desc()).limit(1)
    within = select(LocationEstimate.estimated_at, LocationEstimate.x, LocationEstimate.y).where(
        LocationEstimate.asset_id == asset_id, LocationEstimate.estimated_at >= since,
        LocationEstimate.estimated_at <= until)
    points = [(at, x, y) for at, x, y in (await session.execute(previous)).all()]
    points += [(at, x, y) for at, x, y in (await session.execute(within)).all()]
    seen, moving = analytics.utilisation(points, since=since, until=until, gap_s=gap_s, moving_m=moving_m)
    span = (until - since).total_seconds()
    return {"asset_id": asset_id, "since": since, "until": until, "range_s": round(span, 3),
            "seen_s": round(seen, 3), "moving_s": round(moving, 3), "seen_share": round(seen / span, 4),
            "moving_share": round(moving / span, 4)}
