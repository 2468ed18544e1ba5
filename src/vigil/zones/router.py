"""Zone routes: CRUD keyed by `zone_id`, people counts, batch point-in-zone tests."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Path, Query, Response

from vigil.core.deps import CacheDep, SessionDep
from vigil.core.pagination import Page, PageDep
from vigil.core.routing import Router
from vigil.zones import service
from vigil.zones.schemas import (
    ContainsRequest,
    ContainsResponse,
    ZoneCreate,
    ZoneKind,
    ZoneRead,
    ZoneStats,
    ZoneUpdate,
)

router = Router(prefix="/zones", tags=["zones"])
ZoneIdPath = Annotated[str, Path(max_length=64)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown zone"}}


@router.post("", status_code=201, response_model=ZoneRead,
             responses={409: {"description": "Duplicate zone_id"},
                        422: {"description": "Invalid polygon, or camera_id is not an existing camera"}})
async def create_zone(body: ZoneCreate, session: SessionDep, cache: CacheDep) -> Any:
    """A GeoJSON Polygon in `geometry`, or the seed's corners x1..y4 (stored as the same polygon)."""
    return await service.create_zone(session, zone_in=body, cache=cache)


@router.get("", response_model=Page[ZoneRead])
async def list_zones(session: SessionDep, page: PageDep, kind: ZoneKind | None = None,
                     camera_id: uuid.UUID | None = None) -> dict:
    return await service.list_zones(session, page=page, kind=kind, camera_id=camera_id)


@router.get("/stats", response_model=ZoneStats)
async def zone_stats(session: SessionDep) -> dict:
    """Every zone with its number of people."""
    return await service.stats(session)


@router.get("/{zone_id}", response_model=ZoneRead, responses=NOT_FOUND)
async def get_zone(zone_id: ZoneIdPath, session: SessionDep) -> Any:
    return await service.get_zone(session, zone_id=zone_id)


@router.patch("/{zone_id}", response_model=ZoneRead, responses=NOT_FOUND)
async def update_zone(zone_id: ZoneIdPath, body: ZoneUpdate, session: SessionDep, cache: CacheDep) -> Any:
    return await service.update_zone(session, zone_id=zone_id, zone_in=body, cache=cache)


@router.delete("/{zone_id}", status_code=204,
               responses={**NOT_FOUND, 409: {"description": "People, cameras or sensors refer to the zone and "
                                                   "force is not set"}})
async def delete_zone(zone_id: ZoneIdPath, session: SessionDep, cache: CacheDep,
                      force: Annotated[bool, Query(description="First clear the zone from the people, cameras "
                                                   "and sensors that refer to it")] = False
                      ) -> Response:
    await service.delete_zone(session, zone_id=zone_id, force=force, cache=cache)
    return Response(status_code=204)


@router.post("/{zone_id}/contains", response_model=ContainsResponse, responses=NOT_FOUND)
async def contains(zone_id: ZoneIdPath, body: ContainsRequest, session: SessionDep) -> dict:
    """For each point [x, y]: inside the zone (its boundary counts as inside)?"""
    return {"inside": await service.contains(session, zone_id=zone_id, points=body.points)}


__all__ = ["router"]
