"""Routes for cameras, model configs and sensors: parse, call the service, shape the response."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Query, Response

from vigil.cameras import service
from vigil.cameras.deps import CameraDep, ModelConfigDep, SensorDep
from vigil.cameras.schemas import (
    CameraCreate,
    CameraRead,
    CameraUpdate,
    ModelConfigCreate,
    ModelConfigRead,
    ModelConfigUpdate,
    ModelKind,
    SensorCreate,
    SensorRead,
    SensorUpdate,
)
from vigil.core.deps import SessionDep
from vigil.core.pagination import Page, PageDep
from vigil.core.routing import Router

router = Router(tags=["cameras"])
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"description": "Duplicate name"}}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown id"}}


# --- cameras ---------------------------------------------------------------------------------


@router.post("/cameras", status_code=201, response_model=CameraRead, responses=CONFLICT)
async def create_camera(body: CameraCreate, session: SessionDep) -> Any:
    """Register a camera; the password in `rtsp_url` is kept but never shown again."""
    return await service.create_camera(session, camera_in=body)


@router.get("/cameras", response_model=Page[CameraRead])
async def list_cameras(
    session: SessionDep,
    page: PageDep,
    enabled: bool | None = None,
    zone_id: Annotated[str | None, Query(max_length=100)] = None,
    q: Annotated[str | None, Query(max_length=200, description="Part of the name")] = None,
) -> dict:
    return await service.list_cameras(session, page=page, enabled=enabled, zone_id=zone_id, q=q)


@router.get("/cameras/{camera_id}", response_model=CameraRead, responses=NOT_FOUND)
async def get_camera(camera: CameraDep) -> Any:
    return camera


@router.patch("/cameras/{camera_id}", response_model=CameraRead, responses={**NOT_FOUND, **CONFLICT})
async def update_camera(camera_id: uuid.UUID, body: CameraUpdate, session: SessionDep) -> Any:
    """Partial update. Sending back the masked `rtsp_url` keeps the stored password."""
    return await service.update_camera(session, camera_id=camera_id, camera_in=body)


@router.delete(
    "/cameras/{camera_id}", status_code=204, responses={**NOT_FOUND, 409: {"description": "Has events"}}
)
async def delete_camera(camera: CameraDep, session: SessionDep) -> Response:
    await service.delete_camera(session, camera=camera)
    return Response(status_code=204)


# --- model configs ---------------------------------------------------------------------------


@router.post("/models", status_code=201, response_model=ModelConfigRead, responses=CONFLICT)
async def create_model(body: ModelConfigCreate, session: SessionDep) -> Any:
    return await service.create_model(session, model_in=body)


@router.get("/models", response_model=Page[ModelConfigRead])
async def list_models(
    session: SessionDep,
    page: PageDep,
    kind: ModelKind | None = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
) -> dict:
    return await service.list_models(session, page=page, kind=kind, name=name)


@router.get("/models/{model_id}", response_model=ModelConfigRead, responses=NOT_FOUND)
async def get_model(model: ModelConfigDep) -> Any:
    return model


@router.patch("/models/{model_id}", response_model=ModelConfigRead, responses={**NOT_FOUND, **CONFLICT})
async def update_model(model_id: uuid.UUID, body: ModelConfigUpdate, session: SessionDep) -> Any:
    return await service.update_model(session, model_id=model_id, model_in=body)


@router.delete("/models/{model_id}", status_code=204, responses=NOT_FOUND)
async def delete_model(model: ModelConfigDep, session: SessionDep) -> Response:
    await service.delete_model(session, model=model)
    return Response(status_code=204)


# --- sensors ---------------------------------------------------------------------------------


@router.post("/sensors", status_code=201, response_model=SensorRead, responses=CONFLICT)
async def create_sensor(body: SensorCreate, session: SessionDep) -> Any:
    return await service.create_sensor(session, sensor_in=body)


@router.get("/sensors", response_model=Page[SensorRead])
async def list_sensors(
    session: SessionDep,
    page: PageDep,
    camera_id: uuid.UUID | None = None,
    zone_id: Annotated[str | None, Query(max_length=100)] = None,
) -> dict:
    return await service.list_sensors(session, page=page, camera_id=camera_id, zone_id=zone_id)


@router.get("/sensors/{sensor_id}", response_model=SensorRead, responses=NOT_FOUND)
async def get_sensor(sensor: SensorDep) -> Any:
    return sensor


@router.patch("/sensors/{sensor_id}", response_model=SensorRead, responses={**NOT_FOUND, **CONFLICT})
async def update_sensor(sensor_id: uuid.UUID, body: SensorUpdate, session: SessionDep) -> Any:
    return await service.update_sensor(session, sensor_id=sensor_id, sensor_in=body)


@router.delete("/sensors/{sensor_id}", status_code=204, responses=NOT_FOUND)
async def delete_sensor(sensor: SensorDep, session: SessionDep) -> Response:
    await service.delete_sensor(session, sensor=sensor)
    return Response(status_code=204)


__all__ = ["router"]
