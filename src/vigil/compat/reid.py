"""The Person ReID backend's routes (`/users`, `/users-dict`, `/zones`, `/stats/*`, `/messages/recent`, `/cache/*`).

`{id}` in `/users/{id}` is the person's `global_id`, as in the seed. Zones keep the seed's body
(`zone_id`, `zone_name`, corners `x1`..`y4`) and come back in that shape, with the GeoJSON besides.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from vigil.alerts import service as alerts
from vigil.alerts.schemas import RecentMessage
from vigil.compat import TAG, SeedPage, items, to_domain
from vigil.core.deps import CacheDep, CtxDep, RedisDep, SessionDep
from vigil.core.routing import Router
from vigil.people import service as people
from vigil.people.router import OptionalGalleryDep
from vigil.people.router import directory as people_directory
from vigil.people.schemas import DirectoryEntry, PersonCreate, PersonRead
from vigil.platform.schemas import CacheStats
from vigil.zones import service as zones
from vigil.zones.schemas import CORNERS, Coordinate, Name, ZoneCreate, ZoneId, ZoneKind

router = Router(tags=[TAG])
GlobalIdPath = Annotated[int, Path(ge=0, le=2**63 - 1, description="The person's `global_id`.")]
USER_404: dict[int | str, dict[str, Any]] = {404: {"description": "No person with this global_id"}}


# --- users -----------------------------------------------------------------------------------


@router.get("/users", response_model=list[PersonRead])
async def list_users(session: SessionDep, page: SeedPage,
                     zone_id: Annotated[str | None, Query(max_length=64)] = None) -> Any:
    """Everyone, by global_id, as a plain list."""
    return items(await people.list_people(session, page=page, zone_id=zone_id))


@router.post("/users", status_code=201, response_model=PersonRead,
             responses={409: {"description": "Duplicate global_id"}, 422: {"description": "Unknown zone_id"}})
async def create_user(body: PersonCreate, session: SessionDep, cache: CacheDep) -> Any:
    return await people.create_person(session, person_in=body, cache=cache)


@router.get("/users-dict", response_model=dict[str, DirectoryEntry])
async def users_dict(ctx: CtxDep) -> Response:
    """The cached directory `{"<global_id>": {"name", "zone_id"}}`: `GET /api/v1/people/directory` itself."""
    return await people_directory(ctx)


@router.get("/users/{global_id}", response_model=PersonRead, responses=USER_404)
async def get_user(global_id: GlobalIdPath, session: SessionDep) -> Any:
    return await people.get_by_global_id(session, global_id=global_id)


@router.put("/users/{global_id}", response_model=PersonRead,
            responses={**USER_404, 409: {"description": "Duplicate global_id"},
                       422: {"description": "Unknown zone_id"}})
async def put_user(global_id: GlobalIdPath, body: PersonCreate, session: SessionDep, cache: CacheDep) -> Any:
    """Full update, as the seed's PUT: every field is replaced."""
    person = await people.get_by_global_id(session, global_id=global_id)
    return await people.update_person(session, person_id=person.id, person_in=body, cache=cache)


@router.delete("/users/{global_id}", status_code=204, responses=USER_404)
async def delete_user(global_id: GlobalIdPath, session: SessionDep, cache: CacheDep,
                      gallery: OptionalGalleryDep) -> Response:
    person = await people.get_by_global_id(session, global_id=global_id)
    await people.delete_person(session, person=person, cache=cache, gallery=gallery)
    return Response(status_code=204)


# --- zones -----------------------------------------------------------------------------------


class SeedZoneCreate(BaseModel):
    """The seed's zone: an id, a name and four corners."""

    model_config = ConfigDict(extra="forbid")

    zone_id: ZoneId
    zone_name: Name
    x1: Coordinate
    y1: Coordinate
    x2: Coordinate
    y2: Coordinate
    x3: Coordinate
    y3: Coordinate
    x4: Coordinate
    y4: Coordinate
    kind: ZoneKind = "working"


class SeedZone(BaseModel):
    zone_id: str
    zone_name: str
    x1: float | None = Field(description="Corners of a four-cornered zone; null for other polygons.")
    y1: float | None
    x2: float | None
    y2: float | None
    x3: float | None
    y3: float | None
    x4: float | None
    y4: float | None
    kind: str
    geometry: dict[str, Any]


def seed_zone(zone: Any) -> dict[str, Any]:
    """A Vigil zone in the seed's shape: the corners when the outer ring has exactly four."""
    ring = zone.geometry["coordinates"][0]
    points = ring[:-1] if len(ring) > 1 and ring[0] == ring[-1] else ring
    corners = [c for p in points for c in p[:2]] if len(points) == 4 else [None] * 8
    return {"zone_id": zone.zone_id, "zone_name": zone.name, **dict(zip(CORNERS, corners, strict=True)),
            "kind": zone.kind, "geometry": zone.geometry}


@router.get("/zones", response_model=list[SeedZone])
async def list_seed_zones(session: SessionDep, page: SeedPage) -> Any:
    return [seed_zone(z) for z in items(await zones.list_zones(session, page=page))]


@router.post("/zones", status_code=201, response_model=SeedZone,
             responses={409: {"description": "Duplicate zone_id"}, 422: {"description": "Invalid polygon"}})
async def create_seed_zone(body: SeedZoneCreate, session: SessionDep, cache: CacheDep) -> Any:
    zone_in = to_domain(ZoneCreate, body.model_dump(), renamed={"zone_name": "name"})
    return seed_zone(await zones.create_zone(session, zone_in=zone_in, cache=cache))


@router.get("/zones/{zone_id}", response_model=SeedZone, responses={404: {"description": "Unknown zone"}})
async def get_seed_zone(zone_id: Annotated[str, Path(max_length=64)], session: SessionDep) -> Any:
    return seed_zone(await zones.get_zone(session, zone_id=zone_id))


# --- stats, messages, cache --------------------------------------------------------------------


class UserCount(BaseModel):
    count: int


class ZoneUsers(BaseModel):
    zone_id: str
    zone_name: str
    user_count: int


@router.get("/stats/users", response_model=UserCount)
async def user_count(session: SessionDep) -> Any:
    return {"count": (await people.stats(session))["total"]}


@router.get("/stats/zones", response_model=list[ZoneUsers])
async def zone_user_counts(session: SessionDep) -> Any:
    """Every zone with the number of people in it."""
    return [{"zone_id": z["zone_id"], "zone_name": z["name"], "user_count": z["people"]}
            for z in (await zones.stats(session))["zones"]]


@router.get("/messages/recent", response_model=list[RecentMessage])
async def recent_messages(redis: RedisDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> Any:
    """The latest raw messages seen on `person_reid_alerts`, newest first."""
    return await alerts.recent_messages(redis, limit=limit)


@router.get("/cache/stats", response_model=CacheStats)
async def cache_stats(cache: CacheDep) -> Any:
    return await cache.stats()


class Invalidated(BaseModel):
    status: str
    cache: str


@router.post("/cache/invalidate/users-dict", response_model=Invalidated)
async def invalidate_users_dict(cache: CacheDep) -> Any:
    """Drop the cached directory now; the next `/users-dict` rebuilds it."""
    await people.invalidate_directory_now(cache=cache)
    return {"status": "invalidated", "cache": "users-dict"}


__all__ = ["router"]
