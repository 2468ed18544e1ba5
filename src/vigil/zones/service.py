"""Zone rules: polygons validated on every write, batch point tests, people counts, guarded delete.

People are reached only through `vigil.people.service`, cameras and sensors only through
`vigil.cameras.service`; every zone write invalidates the people directory (it is keyed by zone),
after the unit of work commits.

A person's `zone_id` is a foreign key (RESTRICT). A camera's `zone_ids` and a sensor's `zone_id` are
checked by the cameras domain with `missing_zone_ids(..., lock=True)`, which key-share locks the zones
found: a concurrent delete (which row-locks the zone first) then either waits for the new reference
and sees it, or has already removed the zone, so the reference is refused (422). Either way no
reference outlives its zone. A zone's own `camera_id` is a foreign key to cameras (SET NULL).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection, Sequence
from typing import Any

from loguru import logger
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.cameras import service as cameras_service
from vigil.core.cache import Cache
from vigil.core.crud import apply_patch, ensure_unique, patch_changes, unknown_reference
from vigil.core.errors import Conflict, NotFound, ValidationFailed
from vigil.core.pagination import PageParams, paginate
from vigil.people import service as people_service
from vigil.zones import geometry
from vigil.zones.models import Zone
from vigil.zones.schemas import ZoneCreate, ZoneShape, ZoneUpdate

# Above this many points a containment test goes to a worker thread instead of the event loop.
INLINE_POINTS = 2_000
REFERENCE_NAMES = {"people": ("person", "people"), "cameras": ("camera", "cameras"),
                   "sensors": ("sensor", "sensors")}


class ZoneNotFound(NotFound):
    title = "Zone not found"


class ZoneAlreadyExists(Conflict):
    title = "Zone already exists"


class ZoneInUse(Conflict):
    title = "Zone in use"


class InvalidPolygon(ValidationFailed):
    title = "Invalid polygon"


class UnknownCamera(ValidationFailed):
    title = "Unknown camera"


async def _geojson(shape: ZoneShape) -> dict[str, Any] | None:
    """The validated GeoJSON Polygon of a create/update body, or None when it gives no shape.

    Validation is shapely work that grows with the points (about 1.6 s at the 1M-point limit), so big
    polygons are validated in a thread, as big `contains` batches are."""
    corners = shape.corners()
    if corners is not None:
        rings, where = geometry.rings_from_corners(corners), ["body", "x1..y4"]
    elif shape.geometry is not None:
        rings, where = shape.geometry.rings(), ["body", "geometry"]
    else:
        return None
    try:
        if sum(len(ring) for ring in rings) > INLINE_POINTS:
            await asyncio.to_thread(geometry.polygon_from_rings, rings)
        else:
            geometry.polygon_from_rings(rings)
    except geometry.PolygonError as exc:
        raise InvalidPolygon(f"Invalid polygon: {exc.message}.",
                             errors=[{"loc": where, "msg": exc.message, "type": exc.rule}]) from exc
    return {"type": "Polygon", "coordinates": rings}


async def find_zone(session: AsyncSession, *, zone_id: str, lock: bool = False) -> Zone | None:
    """The zone with this natural id, or None; `lock` row-locks it (update and delete take it)."""
    stmt = select(Zone).where(Zone.zone_id == zone_id)
    return await session.scalar(stmt.with_for_update() if lock else stmt)


async def find_zones(session: AsyncSession, *, zone_ids: Collection[str]) -> dict[str, Zone]:
    """The zones with these natural ids, by zone_id (one query for a consumer's whole batch)."""
    if not zone_ids:
        return {}
    rows = await session.scalars(select(Zone).where(Zone.zone_id.in_(list(zone_ids))))
    return {zone.zone_id: zone for zone in rows}


async def get_zone(session: AsyncSession, *, zone_id: str, lock: bool = False) -> Zone:
    """The zone with this natural id, or 404. Not `crud.get_or_404`: zones are found by `zone_id`,
    not by their primary key, and may be row-locked."""
    zone = await find_zone(session, zone_id=zone_id, lock=lock)
    if zone is None:
        raise ZoneNotFound(f"Zone {zone_id} does not exist.")
    return zone


async def resolve_zone_key(session: AsyncSession, *, key: str) -> str:
    """The `zone_id` named by a key that is either a zone_id or the zone's UUID `id` (seed clients
    address zones by the `id` they were given), or 404."""
    if await zone_exists(session, zone_id=key):
        return key
    try:
        zone_uuid = uuid.UUID(key)
    except ValueError:
        zone_uuid = None
    found = await session.scalar(select(Zone.zone_id).where(Zone.id == zone_uuid)) if zone_uuid else None
    if found is None:
        raise ZoneNotFound(f"Zone {key} does not exist.")
    return found


def new_zone_id() -> str:
    """A server-made `zone_id` for clients that create zones without one (the ANPR seed did)."""
    return f"ZONE_{uuid.uuid4().hex[:12].upper()}"


async def zone_exists(session: AsyncSession, *, zone_id: str) -> bool:
    """Whether a zone has this natural id (for other domains' checks)."""
    return await session.scalar(select(Zone.id).where(Zone.zone_id == zone_id)) is not None


async def missing_zone_ids(session: AsyncSession, *, zone_ids: Sequence[str],
                           lock: bool = False) -> list[str]:
    """The given zone ids that name no zone, in the order given. For other domains' references.

    With `lock`, the zones that do exist are key-share locked until the unit of work ends, so they
    cannot be deleted before the caller's reference to them is committed (see the module docstring).
    """
    wanted = list(dict.fromkeys(zone_ids))
    if not wanted:
        return []
    stmt = select(Zone.zone_id).where(Zone.zone_id.in_(wanted))
    if lock:
        stmt = stmt.with_for_update(key_share=True)
    found = set((await session.scalars(stmt)).all())
    return [zone_id for zone_id in wanted if zone_id not in found]


async def _check_camera(session: AsyncSession, camera_id: uuid.UUID | None) -> None:
    """422 unless the camera exists; its row stays key-share locked so it cannot vanish before our flush."""
    if camera_id is not None and not await cameras_service.camera_exists(session, camera_id=camera_id,
                                                                         lock=True):
        raise unknown_reference("camera_id", camera_id, error=UnknownCamera)


async def list_zones(session: AsyncSession, *, page: PageParams, kind: str | None = None,
                     camera_id: uuid.UUID | None = None) -> dict:
    """One page of zones, filtered by kind and camera, in zone_id order."""
    stmt = select(Zone)
    if kind is not None:
        stmt = stmt.where(Zone.kind == kind)
    if camera_id is not None:
        stmt = stmt.where(Zone.camera_id == camera_id)
    return await paginate(session, stmt.order_by(Zone.zone_id), page)


async def create_zone(session: AsyncSession, *, zone_in: ZoneCreate, cache: Cache) -> Zone:
    """Create a zone with a valid polygon; its zone_id is unique and its camera must exist."""
    geojson = await _geojson(zone_in)
    await ensure_unique(session, Zone, zone_id=zone_in.zone_id, error=ZoneAlreadyExists,
                        detail=f"Zone {zone_in.zone_id} already exists.")
    await _check_camera(session, zone_in.camera_id)
    zone = Zone(zone_id=zone_in.zone_id, name=zone_in.name, kind=zone_in.kind, geometry=geojson,
                camera_id=zone_in.camera_id)
    session.add(zone)
    await session.flush()
    people_service.invalidate_directory(session, cache=cache)
    logger.info("zone {} created ({}, camera {})", zone.zone_id, zone.kind, zone.camera_id)
    return zone


async def update_zone(session: AsyncSession, *, zone_id: str, zone_in: ZoneUpdate, cache: Cache) -> Zone:
    """PATCH a zone: `camera_id: null` detaches it; a new shape is validated like on create."""
    zone = await get_zone(session, zone_id=zone_id, lock=True)
    changes = patch_changes(zone_in)  # ZoneUpdate.__nullable__: camera_id and the corners
    geojson = await _geojson(zone_in)
    if geojson is not None:
        zone.geometry = geojson
    if "camera_id" in changes and changes["camera_id"] != zone.camera_id:
        await _check_camera(session, changes["camera_id"])
    apply_patch(zone, {k: v for k, v in changes.items() if k in ("name", "kind", "camera_id")})
    await session.flush()
    people_service.invalidate_directory(session, cache=cache)
    logger.info("zone {} updated", zone.zone_id)
    return zone


async def delete_zone(session: AsyncSession, *, zone_id: str, force: bool, cache: Cache) -> None:
    """Refuse while people, cameras or sensors refer to the zone, unless `force`, which clears those
    references first: people and sensors lose their `zone_id`, cameras drop it from their `zone_ids`."""
    # The row lock makes references added concurrently wait for us: a person's FK check and
    # `missing_zone_ids(lock=True)` both need a key-share lock on this row.
    zone = await get_zone(session, zone_id=zone_id, lock=True)
    refs = {"people": await people_service.count_in_zone(session, zone_id=zone_id),
            **await cameras_service.count_zone_references(session, zone_id=zone_id)}
    if any(refs.values()) and not force:
        used_by = ", ".join(f"{n} {REFERENCE_NAMES[what][n != 1]}" for what, n in refs.items() if n)
        raise ZoneInUse(f"Zone {zone_id} is used by {used_by}; delete with ?force=true to clear "
                        "those references.", people=refs["people"], cameras=refs["cameras"], sensors=refs["sensors"])
    if refs["people"]:
        await people_service.clear_zone(session, zone_id=zone_id, cache=cache)
    if refs["cameras"] or refs["sensors"]:
        await cameras_service.clear_zone(session, zone_id=zone_id)
    await session.delete(zone)
    await session.flush()
    people_service.invalidate_directory(session, cache=cache)
    logger.info("zone {} deleted (cleared from {} people, {} cameras, {} sensors)", zone_id,
                refs["people"], refs["cameras"], refs["sensors"])


async def contains(session: AsyncSession, *, zone_id: str, points: list[list[float]]) -> list[bool]:
    """Point-in-zone for a batch (the boundary counts as inside), against the prepared polygon."""
    zone = await get_zone(session, zone_id=zone_id)
    rings = zone.geometry["coordinates"]

    def run() -> list[bool]:
        return geometry.covers_points(geometry.prepared(rings), points)

    return await asyncio.to_thread(run) if len(points) > INLINE_POINTS else run()


async def stats(session: AsyncSession) -> dict[str, Any]:
    """Every zone with its number of people, plus how many people have no zone."""
    # Not the geometry: stats never shows it, and a polygon may hold up to a million points.
    zones = (await session.execute(
        select(Zone.zone_id, Zone.name, Zone.kind, Zone.camera_id).order_by(Zone.zone_id))).all()
    counts = await people_service.count_by_zone(session)
    items = [{"zone_id": z.zone_id, "name": z.name, "kind": z.kind, "camera_id": z.camera_id,
              "people": counts.get(z.zone_id, 0)} for z in zones]
    return {
        "zones": items,
        "total_zones": len(items),
        "assigned_people": sum(i["people"] for i in items),
        "unassigned_people": counts.get(None, 0),
    }


__all__ = ["UnknownCamera", "ZoneAlreadyExists", "ZoneInUse", "ZoneNotFound", "contains", "create_zone",
           "delete_zone", "find_zone", "get_zone", "list_zones", "missing_zone_ids", "stats", "update_zone",
           "zone_exists"]
