"""Geofence routes, and where an asset stands with each fence."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.responses import Response

from vigil.assets.geofences import service
from vigil.assets.geofences.schemas import GeofenceCreate, GeofenceRead, GeofenceStateRead, GeofenceUpdate
from vigil.assets.responses import responses
from vigil.core.deps import RedisDep, SessionDep
from vigil.core.pagination import Page, PageDep
from vigil.core.routing import Router

router = Router(tags=["assets"])


@router.get("/assets/{asset_id}/geofences", response_model=list[GeofenceStateRead], responses=responses(404))
async def get_asset_geofences(asset_id: uuid.UUID, session: SessionDep, redis: RedisDep) -> Any:
    """Where the asset stands with each fence of its site (inside or not, since when)."""
    return await service.geofence_states(session, redis=redis, asset_id=asset_id)


@router.post("/geofences", status_code=201, response_model=GeofenceRead, responses=responses(422))
async def create_geofence(body: GeofenceCreate, session: SessionDep) -> Any:
    """A circle (`center`, `radius_m` > 0) or a simple polygon (`polygon`, >= 3 corners) in a site's frame."""
    return await service.create_geofence(session, fence_in=body)


@router.get("/geofences", response_model=Page[GeofenceRead])
async def list_geofences(session: SessionDep, page: PageDep, site_id: uuid.UUID | None = None) -> dict:
    return await service.list_geofences(session, page=page, site_id=site_id)


@router.get("/geofences/{geofence_id}", response_model=GeofenceRead, responses=responses(404))
async def get_geofence(geofence_id: uuid.UUID, session: SessionDep) -> Any:
    return await service.get_geofence(session, geofence_id=geofence_id)


@router.patch("/geofences/{geofence_id}", response_model=GeofenceRead, responses=responses(404, 422))
@router.put("/geofences/{geofence_id}", response_model=GeofenceRead, responses=responses(404, 422))
async def update_geofence(geofence_id: uuid.UUID, body: GeofenceUpdate, session: SessionDep) -> Any:
    return await service.update_geofence(session, geofence_id=geofence_id, fence_in=body)


@router.delete("/geofences/{geofence_id}", status_code=204, responses=responses(404))
async def delete_geofence(geofence_id: uuid.UUID, session: SessionDep) -> Response:
    await service.delete_geofence(session, geofence_id=geofence_id)
    return Response(status_code=204)
