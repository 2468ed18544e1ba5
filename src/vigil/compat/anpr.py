"""The ANPR cloud's routes: `/api/v1/events/*` (ingest, list, stats, stream) and `/api/v1/config/*`.

Ingest is the plates ingest itself (same parsing, limits, dedupe by `event_uid`). Config zones take
the seed's `zone_type` and make a `zone_id` when none is given; `{id}` is the zone's `id` or `zone_id`.
PUT on config resources changes the fields given, as the seed's did.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request, Response, WebSocket
from pydantic import BaseModel, ConfigDict

from vigil.cameras import router as cameras_api
from vigil.cameras import service as cameras
from vigil.cameras.schemas import (
    CameraRead,
    ModelConfigRead,
    SensorRead,
)
from vigil.compat import TAG, SeedPage, items, to_domain
from vigil.core.deps import CacheDep, HubDep, SessionDep, SettingsDep, StorageDep
from vigil.core.routing import Router
from vigil.core.security import requires
from vigil.core.types import LenientUtcDatetime
from vigil.plates import router as plates_api
from vigil.plates import service as plates
from vigil.plates.schemas import PlateEventRead, PlateStats
from vigil.zones import service as zones
from vigil.zones.schemas import Name, PolygonGeometry, ZoneCreate, ZoneId, ZoneRead, ZoneUpdate

router = Router(prefix="/api/v1", tags=[TAG])
ws_router = Router(prefix="/api/v1", tags=[TAG])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown id"}}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"description": "Duplicate name"}}


# --- events ----------------------------------------------------------------------------------


@router.post("/events/ingest", status_code=201, response_model=PlateEventRead,
             openapi_extra=plates_api.INGEST_BODY,
             responses={200: {"description": "Repeat of a known event_uid: the first event"},
                        413: {"description": "Image too large"}, 415: {"description": "Not an image"}})
@requires("ingest")
async def ingest(request: Request, response: Response, session: SessionDep, settings: SettingsDep,
                 storage: StorageDep) -> Any:
    """The edge devices' ingest: JSON, or multipart `event` + `frame`/`crop` (as `POST /api/v1/plates/events`)."""
    return await plates_api.ingest_event(request, response, session, settings, storage)


@router.get("/events", response_model=list[PlateEventRead])
async def list_events(
    session: SessionDep,
    page: SeedPage,
    plate: Annotated[str | None, Query(max_length=50)] = None,
    camera_id: uuid.UUID | None = None,
    since: LenientUtcDatetime | None = None,
    until: LenientUtcDatetime | None = None,
    min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
) -> Any:
    """Newest first, as a plain list."""
    return items(await plates.list_events(session, page=page, plate=plate, max_distance=0, camera_id=camera_id,
                                          since=since, until=until, min_confidence=min_confidence))


@router.get("/events/stats", response_model=PlateStats)
async def event_stats(session: SessionDep, since: LenientUtcDatetime | None = None,
                      until: LenientUtcDatetime | None = None) -> Any:
    return await plates.stats(session, since=since, until=until)


@router.get("/events/{event_id}", response_model=PlateEventRead, responses=NOT_FOUND)
async def get_event(event_id: uuid.UUID, session: SessionDep) -> Any:
    return await plates.get_event(session, event_id=event_id)


@ws_router.websocket("/events/stream")
async def event_stream(websocket: WebSocket, hub: HubDep) -> None:
    """Every new plate event as `plate.event` (as `/ws/plates`)."""
    await hub.serve(websocket, types=("plate.event",))


# --- config: cameras, models, sensors -------------------------------------------------------------


# The seed's config routes are the cameras API's own endpoints under the seed's paths (PUT is the
# PATCH endpoint: the seed's PUT changed the fields sent). Only the list differs: a plain array.


def _plain_list(list_page: Callable[..., Awaitable[dict]]) -> Callable[..., Awaitable[Any]]:
    async def plain_list(session: SessionDep, page: SeedPage) -> Any:
        return items(await list_page(session, page=page))

    return plain_list


Responses = dict[int | str, dict[str, Any]]
_CONFIG: tuple[tuple[str, str, type[BaseModel], Callable[..., Any], Callable[..., Awaitable[dict]],
                     Callable[..., Any], Callable[..., Any], Callable[..., Any], Responses], ...] = (
    ("cameras", "camera_id", CameraRead, cameras_api.create_camera, cameras.list_cameras, cameras_api.get_camera,
     cameras_api.update_camera, cameras_api.delete_camera, {409: {"description": "Has events"}}),
    ("models", "model_id", ModelConfigRead, cameras_api.create_model, cameras.list_models, cameras_api.get_model,
     cameras_api.update_model, cameras_api.delete_model, {}),
    ("sensors", "sensor_id", SensorRead, cameras_api.create_sensor, cameras.list_sensors, cameras_api.get_sensor,
     cameras_api.update_sensor, cameras_api.delete_sensor, {}),
)
for name, id_name, read, create, list_page, get, update, delete, delete_errors in _CONFIG:
    one = f"/config/{name}/{{{id_name}}}"
    router.add_api_route(f"/config/{name}", create, methods=["POST"], status_code=201, response_model=read,
                         responses=CONFLICT)
    router.add_api_route(f"/config/{name}", _plain_list(list_page), methods=["GET"],
                         response_model=list[read],  # type: ignore[valid-type]  # a model chosen per resource
                         name=f"list_{name}")
    router.add_api_route(one, get, methods=["GET"], response_model=read, responses=NOT_FOUND)
    router.add_api_route(one, update, methods=["PUT"], response_model=read, responses={**NOT_FOUND, **CONFLICT})
    router.add_api_route(one, delete, methods=["DELETE"], status_code=204, responses={**NOT_FOUND, **delete_errors})


# --- config: zones -------------------------------------------------------------------------------

ZoneType = Literal["detection", "exclusion", "parking"]


class ConfigZoneCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    zone_type: ZoneType
    geometry: PolygonGeometry
    camera_id: uuid.UUID | None = None
    zone_id: ZoneId | None = None


class ConfigZoneUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    zone_type: ZoneType | None = None
    geometry: PolygonGeometry | None = None
    camera_id: uuid.UUID | None = None


class ConfigZoneRead(ZoneRead):
    zone_type: str


def config_zone(zone: Any) -> dict[str, Any]:
    return {**ZoneRead.model_validate(zone).model_dump(), "zone_type": zone.kind}


ZoneKey = Annotated[str, Path(max_length=64, description="The zone's `id` or its `zone_id`.")]


@router.post("/config/zones", status_code=201, response_model=ConfigZoneRead,
             responses={409: {"description": "Duplicate zone_id"},
                        422: {"description": "Invalid polygon or unknown camera"}})
async def create_config_zone(body: ConfigZoneCreate, session: SessionDep, cache: CacheDep) -> Any:
    data = {**body.model_dump(exclude_unset=True), "zone_id": body.zone_id or zones.new_zone_id()}
    zone_in = to_domain(ZoneCreate, data, renamed={"zone_type": "kind"})
    return config_zone(await zones.create_zone(session, zone_in=zone_in, cache=cache))


@router.get("/config/zones", response_model=list[ConfigZoneRead])
async def list_config_zones(session: SessionDep, page: SeedPage, camera_id: uuid.UUID | None = None) -> Any:
    return [config_zone(z) for z in items(await zones.list_zones(session, page=page, camera_id=camera_id))]


@router.get("/config/zones/{key}", response_model=ConfigZoneRead, responses=NOT_FOUND)
async def get_config_zone(key: ZoneKey, session: SessionDep) -> Any:
    zone_id = await zones.resolve_zone_key(session, key=key)
    return config_zone(await zones.get_zone(session, zone_id=zone_id))


@router.put("/config/zones/{key}", response_model=ConfigZoneRead, responses=NOT_FOUND)
async def put_config_zone(key: ZoneKey, body: ConfigZoneUpdate, session: SessionDep, cache: CacheDep) -> Any:
    zone_id = await zones.resolve_zone_key(session, key=key)
    zone_in = to_domain(ZoneUpdate, body.model_dump(exclude_unset=True), renamed={"zone_type": "kind"})
    return config_zone(await zones.update_zone(session, zone_id=zone_id, zone_in=zone_in, cache=cache))


@router.delete("/config/zones/{key}", status_code=204,
               responses={**NOT_FOUND, 409: {"description": "People, cameras or sensors refer to the zone"}})
async def delete_config_zone(key: ZoneKey, session: SessionDep, cache: CacheDep) -> Response:
    zone_id = await zones.resolve_zone_key(session, key=key)
    await zones.delete_zone(session, zone_id=zone_id, force=False, cache=cache)
    return Response(status_code=204)


__all__ = ["router", "ws_router"]
