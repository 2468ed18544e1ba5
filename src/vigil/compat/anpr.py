"""The ANPR cloud's routes: `/api/v1/events/*` (ingest, list, stats, stream) and `/api/v1/config/*`.

Ingest is the plates ingest itself (same parsing, limits, dedupe by `event_uid`). Config zones take
the seed's `zone_type` and make a `zone_id` when none is given; `{id}` is the zone's `id` or `zone_id`.
PUT on config resources changes the fields given, as the seed's did.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, WebSocket
from pydantic import BaseModel, ConfigDict

from vigil.cameras import service as cameras
from vigil.cameras.schemas import (
    CameraCreate,
    CameraRead,
    CameraUpdate,
    ModelConfigCreate,
    ModelConfigRead,
    ModelConfigUpdate,
    SensorCreate,
    SensorRead,
    SensorUpdate,
)
from vigil.compat import TAG, SeedPage, items, to_domain
from vigil.core.deps import CacheDep, SessionDep, SettingsDep, StorageDep
from vigil.core.security import requires
from vigil.core.types import LenientUtcDatetime
from vigil.plates import router as plates_api
from vigil.plates import service as plates
from vigil.plates.schemas import PlateEventRead, PlateStats
from vigil.zones import service as zones
from vigil.zones.schemas import Name, PolygonGeometry, ZoneCreate, ZoneId, ZoneRead, ZoneUpdate

router = APIRouter(prefix="/api/v1", tags=[TAG])
ws_router = APIRouter(prefix="/api/v1", tags=[TAG])
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
async def event_stream(websocket: WebSocket) -> None:
    """Every new plate event as `plate.event` (as `/ws/plates`)."""
    await websocket.app.state.ctx.hub.serve(websocket, types=("plate.event",))


# --- config: cameras, models, sensors -------------------------------------------------------------


@router.post("/config/cameras", status_code=201, response_model=CameraRead, responses=CONFLICT)
async def create_camera(body: CameraCreate, session: SessionDep) -> Any:
    return await cameras.create_camera(session, camera_in=body)


@router.get("/config/cameras", response_model=list[CameraRead])
async def list_cameras(session: SessionDep, page: SeedPage) -> Any:
    return items(await cameras.list_cameras(session, page=page))


@router.get("/config/cameras/{camera_id}", response_model=CameraRead, responses=NOT_FOUND)
async def get_camera(camera_id: uuid.UUID, session: SessionDep) -> Any:
    return await cameras.get_camera(session, camera_id=camera_id)


@router.put("/config/cameras/{camera_id}", response_model=CameraRead, responses={**NOT_FOUND, **CONFLICT})
async def put_camera(camera_id: uuid.UUID, body: CameraUpdate, session: SessionDep) -> Any:
    return await cameras.update_camera(session, camera_id=camera_id, camera_in=body)


@router.delete("/config/cameras/{camera_id}", status_code=204,
               responses={**NOT_FOUND, 409: {"description": "Has events"}})
async def delete_camera(camera_id: uuid.UUID, session: SessionDep) -> Response:
    await cameras.delete_camera(session, camera_id=camera_id)
    return Response(status_code=204)


@router.post("/config/models", status_code=201, response_model=ModelConfigRead, responses=CONFLICT)
async def create_model(body: ModelConfigCreate, session: SessionDep) -> Any:
    return await cameras.create_model(session, model_in=body)


@router.get("/config/models", response_model=list[ModelConfigRead])
async def list_models(session: SessionDep, page: SeedPage) -> Any:
    return items(await cameras.list_models(session, page=page))


@router.get("/config/models/{model_id}", response_model=ModelConfigRead, responses=NOT_FOUND)
async def get_model(model_id: uuid.UUID, session: SessionDep) -> Any:
    return await cameras.get_model(session, model_id=model_id)


@router.put("/config/models/{model_id}", response_model=ModelConfigRead, responses={**NOT_FOUND, **CONFLICT})
async def put_model(model_id: uuid.UUID, body: ModelConfigUpdate, session: SessionDep) -> Any:
    return await cameras.update_model(session, model_id=model_id, model_in=body)


@router.delete("/config/models/{model_id}", status_code=204, responses=NOT_FOUND)
async def delete_model(model_id: uuid.UUID, session: SessionDep) -> Response:
    await cameras.delete_model(session, model_id=model_id)
    return Response(status_code=204)


@router.post("/config/sensors", status_code=201, response_model=SensorRead, responses=CONFLICT)
async def create_sensor(body: SensorCreate, session: SessionDep) -> Any:
    return await cameras.create_sensor(session, sensor_in=body)


@router.get("/config/sensors", response_model=list[SensorRead])
async def list_sensors(session: SessionDep, page: SeedPage) -> Any:
    return items(await cameras.list_sensors(session, page=page))


@router.get("/config/sensors/{sensor_id}", response_model=SensorRead, responses=NOT_FOUND)
async def get_sensor(sensor_id: uuid.UUID, session: SessionDep) -> Any:
    return await cameras.get_sensor(session, sensor_id=sensor_id)


@router.put("/config/sensors/{sensor_id}", response_model=SensorRead, responses={**NOT_FOUND, **CONFLICT})
async def put_sensor(sensor_id: uuid.UUID, body: SensorUpdate, session: SessionDep) -> Any:
    return await cameras.update_sensor(session, sensor_id=sensor_id, sensor_in=body)


@router.delete("/config/sensors/{sensor_id}", status_code=204, responses=NOT_FOUND)
async def delete_sensor(sensor_id: uuid.UUID, session: SessionDep) -> Response:
    await cameras.delete_sensor(session, sensor_id=sensor_id)
    return Response(status_code=204)


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
