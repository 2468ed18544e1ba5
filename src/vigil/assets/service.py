"""Assets rules for the API: CRUD of sites, gateways, assets, jobs and maintenance; location reads.

Every function takes the request's session and keyword-only arguments, flushes (never commits) and
raises domain errors; the router turns them into responses.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from loguru import logger
from redis.asyncio import Redis
from sqlalchemy import Select, String, cast, exists, or_, select, text
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from vigil.alerts import service as alerts
from vigil.assets.assets.models import Asset
from vigil.assets.assets.schemas import AssetCreate, AssetUpdate
from vigil.assets.gateways.models import Gateway
from vigil.assets.gateways.schemas import GatewayCreate, GatewayUpdate
from vigil.assets.geofences import evaluation as geofencing
from vigil.assets.geofences import shapes as geofence
from vigil.assets.geofences.models import Geofence, GeofenceEvent
from vigil.assets.geofences.schemas import GeofenceCreate, GeofenceUpdate
from vigil.assets.jobs.models import Job
from vigil.assets.jobs.schemas import JobCreate, JobUpdate
from vigil.assets.maintenance.models import Maintenance
from vigil.assets.maintenance.schemas import MaintenanceCreate, MaintenanceUpdate
from vigil.assets.metrics import OBSERVATIONS
from vigil.assets.rules.checks import maintenance_subject, validate_params
from vigil.assets.rules.models import Rule
from vigil.assets.rules.schemas import RuleCreate, RuleUpdate
from vigil.assets.sites.models import Site
from vigil.assets.sites.schemas import SiteCreate, SiteUpdate
from vigil.assets.tracking import analytics
from vigil.assets.tracking import estimation as tracking
from vigil.assets.tracking.models import LocationEstimate
from vigil.assets.tracking.schemas import IngestResult, ObservationIn
from vigil.core.crud import apply_patch, ensure_unique, get_or_404, patch_changes, unknown_reference
from vigil.core.db import utcnow
from vigil.core.errors import Conflict, InvalidState, NotFound, PayloadTooLarge, ValidationFailed
from vigil.core.pagination import PageParams, paginate


class SiteNotFound(NotFound):
    title = "Site not found"


class GatewayNotFound(NotFound):
    title = "Gateway not found"


class AssetNotFound(NotFound):
    title = "Asset not found"


class JobNotFound(NotFound):
    title = "Job not found"


class MaintenanceNotFound(NotFound):
    title = "Maintenance record not found"


class LocationNotFound(NotFound):
    title = "No location yet"


async def _require_site(session: AsyncSession, site_id: uuid.UUID | None) -> None:
    """A reference to a site in a payload: unknown is a 422 (the payload is wrong), not a 404."""
    if site_id is not None and await session.get(Site, site_id) is None:
        raise unknown_reference("site_id", site_id)


async def _unique(session: AsyncSession, model: type, column: Any, value: Any, *, exclude: uuid.UUID | None,
                  what: str) -> None:
    await ensure_unique(session, model, exclude_id=exclude, detail=f"{what} already exists.",
                        **{column.key: value})


# --- sites -----------------------------------------------------------------------------------


async def create_site(session: AsyncSession, *, site_in: SiteCreate) -> Site:
    """Create a site; its name is unique."""
    await _unique(session, Site, Site.name, site_in.name, exclude=None, what=f"A site named {site_in.name!r}")
    site = Site(**site_in.model_dump())
    session.add(site)
    await session.flush()
    return site


async def get_site(session: AsyncSession, *, site_id: uuid.UUID) -> Site:
    """One site by id, or 404."""
    return await get_or_404(session, Site, site_id, error=SiteNotFound)


async def list_sites(session: AsyncSession, *, page: PageParams) -> dict:
    """One page of sites, by name."""
    return await paginate(session, select(Site).order_by(Site.name, Site.id), page)


async def update_site(session: AsyncSession, *, site_id: uuid.UUID, site_in: SiteUpdate) -> Site:
    """PATCH a site: only `description` may be null; the name stays unique."""
    site = await get_site(session, site_id=site_id)
    changes = patch_changes(site_in)
    if changes.get("name", site.name) != site.name:
        await _unique(session, Site, Site.name, changes["name"], exclude=site.id,
                      what=f"A site named {changes['name']!r}")
    apply_patch(site, changes)
    await session.flush()
    return site


async def delete_site(session: AsyncSession, *, site_id: uuid.UUID) -> None:
    """Delete an empty site; one that still has gateways, assets, geofences or jobs is a 409."""
    site = await get_site(session, site_id=site_id)
    for model, what in ((Gateway, "gateways"), (Asset, "assets"), (Geofence, "geofences"), (Job, "jobs")):
        if await session.scalar(select(exists().where(model.site_id == site_id))):
            raise Conflict(f"Site {site_id} still has {what}; delete or move them first.")
    await session.delete(site)
    await session.flush()


# --- gateways --------------------------------------------------------------------------------


async def create_gateway(session: AsyncSession, *, gateway_in: GatewayCreate) -> Gateway:
    """Place a gateway on an existing site; its name is unique."""
    await _require_site(session, gateway_in.site_id)
    await _unique(session, Gateway, Gateway.name, gateway_in.name, exclude=None,
                  what=f"A gateway named {gateway_in.name!r}")
    gateway = Gateway(**gateway_in.model_dump())
    session.add(gateway)
    await session.flush()
    return gateway


async def get_gateway(session: AsyncSession, *, gateway_id: uuid.UUID) -> Gateway:
    """One gateway by id, or 404."""
    return await get_or_404(session, Gateway, gateway_id, error=GatewayNotFound)


async def list_gateways(session: AsyncSession, *, page: PageParams, site_id: uuid.UUID | None = None) -> dict:
    """One page of gateways, optionally of one site."""
    stmt = select(Gateway).order_by(Gateway.name, Gateway.id)
    if site_id is not None:
        stmt = stmt.where(Gateway.site_id == site_id)
    return await paginate(session, stmt, page)


async def update_gateway(session: AsyncSession, *, gateway_id: uuid.UUID,
                         gateway_in: GatewayUpdate) -> Gateway:
    """PATCH a gateway: no field may be null (a null used to be dropped silently; now 422 like cameras)."""
    gateway = await get_gateway(session, gateway_id=gateway_id)
    changes = patch_changes(gateway_in)
    if "site_id" in changes:
        await _require_site(session, changes["site_id"])
    if changes.get("name", gateway.name) != gateway.name:
        await _unique(session, Gateway, Gateway.name, changes["name"], exclude=gateway.id,
                      what=f"A gateway named {changes['name']!r}")
    apply_patch(gateway, changes)
    await session.flush()
    return gateway


async def delete_gateway(session: AsyncSession, *, gateway_id: uuid.UUID) -> None:
    """Delete a gateway; its past observations go with it (cascade)."""
    await session.delete(await get_gateway(session, gateway_id=gateway_id))
    await session.flush()


# --- assets ----------------------------------------------------------------------------------


async def create_asset(session: AsyncSession, *, asset_in: AssetCreate) -> Asset:
    """Register an asset; its tag_id is unique and its site, if given, must exist."""
    await _require_site(session, asset_in.site_id)
    await _unique(session, Asset, Asset.tag_id, asset_in.tag_id, exclude=None,
                  what=f"An asset with tag_id {asset_in.tag_id!r}")
    asset = Asset(**asset_in.model_dump())
    session.add(asset)
    await session.flush()
    return asset


async def get_asset(session: AsyncSession, *, asset_id: uuid.UUID) -> Asset:
    """One asset by id, or 404."""
    return await get_or_404(session, Asset, asset_id, error=AssetNotFound)


async def list_assets(session: AsyncSession, *, page: PageParams, site_id: uuid.UUID | None = None,
                      kind: str | None = None, tag_id: str | None = None, q: str | None = None) -> dict:
    """One page of assets, filtered by site, kind, tag and part of the name."""
    stmt = select(Asset).order_by(Asset.name, Asset.id)
    if site_id is not None:
        stmt = stmt.where(Asset.site_id == site_id)
    if kind is not None:
        stmt = stmt.where(Asset.kind == kind)
    if tag_id is not None:
        stmt = stmt.where(Asset.tag_id == tag_id)
    if q:
        stmt = stmt.where(Asset.name.icontains(q, autoescape=True))
    return await paginate(session, stmt, page)


async def update_asset(session: AsyncSession, *, asset_id: uuid.UUID, asset_in: AssetUpdate) -> Asset:
    """PATCH an asset: only `site_id` may be null; tag_id stays unique."""
    asset = await get_asset(session, asset_id=asset_id)
    changes = patch_changes(asset_in)  # only site_id may be null (an asset without a home site)
    if changes.get("site_id") is not None:
        await _require_site(session, changes["site_id"])
    if changes.get("tag_id", asset.tag_id) != asset.tag_id:
        await _unique(session, Asset, Asset.tag_id, changes["tag_id"], exclude=asset.id,
                      what=f"An asset with tag_id {changes['tag_id']!r}")
    apply_patch(asset, changes)
    await session.flush()
    return asset


async def delete_asset(session: AsyncSession, *, asset_id: uuid.UUID) -> None:
    """Deletes the asset with its observations, location history and fence state (cascade)."""
    await session.delete(await get_asset(session, asset_id=asset_id))
    await session.flush()


# --- jobs ------------------------------------------------------------------------------------

JOB_TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"in_progress", "done"}),
    "in_progress": frozenset({"open", "done"}),
    "done": frozenset(),
}


async def _assets_by_id(session: AsyncSession, asset_ids: Iterable[uuid.UUID]) -> list[Asset]:
    wanted = list(dict.fromkeys(asset_ids))
    if not wanted:
        return []
    found = {a.id: a for a in (await session.scalars(select(Asset).where(Asset.id.in_(wanted)))).all()}
    missing = [str(i) for i in wanted if i not in found]
    if missing:
        raise unknown_reference("asset_ids", missing, what="asset")
    return [found[i] for i in wanted]


def _jobs() -> Select[Job]:
    return select(Job).options(selectinload(Job.assets))


async def create_job(session: AsyncSession, *, job_in: JobCreate) -> Job:
    """Open a job on existing assets (and site, if given)."""
    await _require_site(session, job_in.site_id)
    assets = await _assets_by_id(session, job_in.asset_ids)
    job = Job(**job_in.model_dump(exclude={"asset_ids"}), status="open")
    job.assets = assets
    session.add(job)
    await session.flush()
    return await get_job(session, job_id=job.id)


async def get_job(session: AsyncSession, *, job_id: uuid.UUID) -> Job:
    """One job with its assets, or 404 (not `crud.get_or_404`: it loads the assets in the same query)."""
    job = await session.scalar(_jobs().where(Job.id == job_id).execution_options(populate_existing=True))
    if job is None:
        raise JobNotFound(f"Job {job_id} does not exist.")
    return job


async def list_jobs(session: AsyncSession, *, page: PageParams, status: str | None = None,
                    asset_id: uuid.UUID | None = None, site_id: uuid.UUID | None = None) -> dict:
    """One page of jobs, newest first, filtered by status, site and asset."""
    stmt = _jobs().order_by(Job.created_at.desc(), Job.id)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if site_id is not None:
        stmt = stmt.where(Job.site_id == site_id)
    if asset_id is not None:
        stmt = stmt.where(Job.assets.any(Asset.id == asset_id))
    return await paginate(session, stmt, page)


async def update_job(session: AsyncSession, *, job_id: uuid.UUID, job_in: JobUpdate) -> Job:
    """Field changes plus the status machine: open <-> in_progress -> done; done is final."""
    job = await get_job(session, job_id=job_id)
    changes = patch_changes(job_in)
    status = changes.pop("status", None)
    asset_ids = changes.pop("asset_ids", None)
    if job.status == "done" and (changes or asset_ids is not None or status not in (None, "done")):
        raise InvalidState(f"Job {job_id} is done and can no longer change.")
    if "site_id" in changes:
        await _require_site(session, changes["site_id"])
    apply_patch(job, changes)
    if asset_ids is not None:
        job.assets = await _assets_by_id(session, asset_ids)
    if status is not None and status != job.status:
        if status not in JOB_TRANSITIONS[job.status]:
            raise InvalidState(f"A job cannot go from {job.status} to {status}.")
        now = utcnow()
        if status == "in_progress" and job.started_at is None:
            job.started_at = now
        if status == "done":
            job.completed_at = now
        job.status = status
    job.updated_at = utcnow()
    await session.flush()
    return await get_job(session, job_id=job.id)


async def delete_job(session: AsyncSession, *, job_id: uuid.UUID) -> None:
    """Delete a job (its asset links go with it)."""
    await session.delete(await get_job(session, job_id=job_id))
    await session.flush()


# --- maintenance -----------------------------------------------------------------------------


async def create_maintenance(session: AsyncSession, *, record_in: MaintenanceCreate) -> Maintenance:
    """Schedule maintenance of an existing asset."""
    if await session.get(Asset, record_in.asset_id) is None:
        raise unknown_reference("asset_id", record_in.asset_id)
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


# --- locations -------------------------------------------------------------------------------


async def current_location(session: AsyncSession, *, redis: Redis, asset_id: uuid.UUID) -> Any:
    """The newest estimate: from the Redis copy the estimator keeps, else from the history table."""
    await get_asset(session, asset_id=asset_id)
    cached = await tracking.cached_location(redis, asset_id)
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
    """Newest first."""
    await get_asset(session, asset_id=asset_id)
    stmt = select(LocationEstimate).where(LocationEstimate.asset_id == asset_id)
    if since is not None:
        stmt = stmt.where(LocationEstimate.estimated_at >= since)
    if until is not None:
        stmt = stmt.where(LocationEstimate.estimated_at <= until)
    return await paginate(session, stmt.order_by(LocationEstimate.estimated_at.desc(),
                                                 LocationEstimate.id.desc()), page)



# --- geofences -------------------------------------------------------------------------------


class GeofenceNotFound(NotFound):
    title = "Geofence not found"


def _shape(kind: str, center: Any, radius_m: Any, points: Any) -> None:
    try:
        geofence.build(kind, center=center, radius_m=radius_m, points=points)
    except geofence.InvalidShape as exc:
        raise ValidationFailed(str(exc), errors=[
            {"loc": ["body", "polygon" if kind == "polygon" else "radius_m"], "msg": str(exc),
             "type": "invalid_geometry"}]) from exc


def _geometry_columns(kind: str, center: Any, radius_m: Any, points: Any) -> dict[str, Any]:
    if kind == "circle":
        return {"center_x": center[0], "center_y": center[1], "radius_m": radius_m, "polygon": None}
    return {"center_x": None, "center_y": None, "radius_m": None, "polygon": geofence.normalised_ring(points)}


async def create_geofence(session: AsyncSession, *, fence_in: GeofenceCreate) -> Geofence:
    """Draw a circle or polygon geofence on an existing site."""
    await _require_site(session, fence_in.site_id)
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
    """Geometry changes keep each asset's state; the next location is judged against the new shape."""
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
    return await geofencing.states_of(session, redis, asset_id=asset_id)


# --- rules -----------------------------------------------------------------------------------


class RuleNotFound(NotFound):
    title = "Rule not found"


def _params(kind: str, params: dict[str, float]) -> dict[str, float]:
    full, problems = validate_params(kind, params)
    if problems:
        raise ValidationFailed("; ".join(problems), errors=[
            {"loc": ["body", "params"], "msg": p, "type": "invalid_param"} for p in problems])
    return full


async def create_rule(session: AsyncSession, *, rule_in: RuleCreate) -> Rule:
    """Create an alert rule, scoped to an existing site or asset (or global)."""
    await _require_site(session, rule_in.site_id)
    if rule_in.asset_id is not None and await session.get(Asset, rule_in.asset_id) is None:
        raise unknown_reference("asset_id", rule_in.asset_id)
    rule = Rule(**rule_in.model_dump(exclude={"params"}), params=_params(rule_in.kind, rule_in.params))
    session.add(rule)
    await session.flush()
    return rule


async def get_rule(session: AsyncSession, *, rule_id: uuid.UUID) -> Rule:
    """One rule by id, or 404."""
    return await get_or_404(session, Rule, rule_id, error=RuleNotFound)


async def list_rules(session: AsyncSession, *, page: PageParams, kind: str | None = None,
                     site_id: uuid.UUID | None = None, asset_id: uuid.UUID | None = None) -> dict:
    """One page of rules, filtered by kind, site and asset."""
    stmt = select(Rule).order_by(Rule.kind, Rule.created_at, Rule.id)
    for column, value in ((Rule.kind, kind), (Rule.site_id, site_id), (Rule.asset_id, asset_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    return await paginate(session, stmt, page)


async def update_rule(session: AsyncSession, *, rule_id: uuid.UUID, rule_in: RuleUpdate) -> Rule:
    """Takes effect at the next check (raising or resolving then, as the new settings say)."""
    rule = await get_rule(session, rule_id=rule_id)
    changes = patch_changes(rule_in)
    if "params" in changes:
        changes["params"] = _params(rule.kind, {**rule.params, **changes["params"]})
    apply_patch(rule, changes)
    rule.updated_at = utcnow()
    await session.flush()
    return rule


async def delete_rule(session: AsyncSession, *, rule_id: uuid.UUID) -> None:
    """Active alerts of the rule are resolved at the next check."""
    await session.delete(await get_rule(session, rule_id=rule_id))
    await session.flush()


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


# --- retention (run by core.retention; listed in registry.retention_policies) ----------------


async def purge_locations(ctx: Any, *, cutoff: datetime, limit: int) -> int:
    """Delete one chunk of location history older than `cutoff` (the asset row keeps its latest fix)."""
    from vigil.core.retention import delete_chunk

    return len(await delete_chunk(ctx, LocationEstimate.id, LocationEstimate.estimated_at < cutoff, limit=limit))


async def purge_geofence_events(ctx: Any, *, cutoff: datetime, limit: int) -> int:
    """Delete one chunk of enter/exit history older than `cutoff` (current states are kept)."""
    from vigil.core.retention import delete_chunk

    return len(await delete_chunk(ctx, GeofenceEvent.id, GeofenceEvent.at < cutoff, limit=limit))


def retention_policies() -> list[Any]:
    """What the assets domain lets retention purge, and under which settings."""
    from vigil.core.retention import RetentionPolicy

    return [RetentionPolicy("asset_locations", "retention_locations_days", purge_locations),
            RetentionPolicy("geofence_events", "retention_geofence_events_days", purge_geofence_events)]
