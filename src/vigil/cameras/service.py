"""Camera, model config and sensor rules. Other domains look cameras up through `get_camera`.

Zones are reached only through `vigil.zones.service`: a camera's `zone_ids` and a sensor's `zone_id`
must name existing zones (422 naming the missing ones), and a zone is deleted only after its
references here were cleared (`count_zone_references`, `clear_zone`, called by the zones domain).
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from loguru import logger
from sqlalchemy import CursorResult, ScalarSelect, Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.cameras.models import Camera, ModelConfig, Sensor
from vigil.cameras.schemas import (
    CameraCreate,
    CameraUpdate,
    ModelConfigCreate,
    ModelConfigUpdate,
    SensorCreate,
    SensorUpdate,
)
from vigil.cameras.urls import keep_masked_password
from vigil.core.crud import apply_patch, ensure_unique, flush_or_conflict, get_or_404, patch_changes, unknown_reference
from vigil.core.db import utcnow
from vigil.core.errors import NotFound, ValidationFailed
from vigil.core.pagination import PageParams, paginate
from vigil.zones import service as zones_service


class CameraNotFound(NotFound):
    title = "Camera not found"


class ModelConfigNotFound(NotFound):
    title = "Model config not found"


class SensorNotFound(NotFound):
    title = "Sensor not found"


class UnknownZone(ValidationFailed):
    title = "Unknown zone"


async def _check_zones(session: AsyncSession, field: str, zone_ids: list[str]) -> None:
    """422 naming every zone id that does not exist; the ones that do stay locked against deletion."""
    missing = await zones_service.missing_zone_ids(session, zone_ids=zone_ids, lock=True)
    if missing:
        if field == "zone_ids":
            raise unknown_reference(field, [(zone_ids.index(z), z) for z in missing], what="zone",
                                    indexed=True, error=UnknownZone, missing_zone_ids=missing)
        raise unknown_reference(field, missing, what="zone", error=UnknownZone, missing_zone_ids=missing)


# --- cameras ---------------------------------------------------------------------------------


async def _name_free(
    session: AsyncSession, model: Any, name: str, *, exclude: uuid.UUID | None = None
) -> None:
    noun = model.__tablename__[:-1].replace("_", " ")
    await ensure_unique(session, model, name=name, exclude_id=exclude,
                        detail=f"A {noun} named {name!r} already exists.")


async def create_camera(session: AsyncSession, *, camera_in: CameraCreate) -> Camera:
    """Register a camera: its name is unique and every zone it lists must exist."""
    await _name_free(session, Camera, camera_in.name)
    await _check_zones(session, "zone_ids", camera_in.zone_ids)
    data = camera_in.model_dump(exclude={"location"})
    location = camera_in.location
    camera = Camera(**data, lat=location.lat if location else None, lon=location.lon if location else None)
    session.add(camera)
    await flush_or_conflict(session, f"A camera named {camera_in.name!r} already exists.")
    logger.info("camera {} created (name={!r})", camera.id, camera.name)
    return camera


async def get_camera(session: AsyncSession, *, camera_id: uuid.UUID) -> Camera:
    """One camera by id, or 404."""
    return await get_or_404(session, Camera, camera_id, error=CameraNotFound)


async def find_camera(session: AsyncSession, *, name: str) -> Camera | None:
    """The camera with this name, or None (the seed and imports look cameras up by name)."""
    return await session.scalar(select(Camera).where(Camera.name == name))


async def camera_exists(session: AsyncSession, *, camera_id: uuid.UUID, lock: bool = False) -> bool:
    """For other domains' references; `lock` key-share locks the row so it outlives the caller's flush."""
    stmt = select(Camera.id).where(Camera.id == camera_id)
    if lock:
        stmt = stmt.with_for_update(key_share=True)
    return await session.scalar(stmt) is not None


def name_of(camera_id: Any) -> ScalarSelect[str]:
    """The camera's name as a scalar subquery, NULL when there is no such camera: for another domain to
    fold the existence check into a query it runs anyway, instead of a round trip of its own."""
    return select(Camera.name).where(Camera.id == camera_id).scalar_subquery()


async def camera_names(session: AsyncSession, *, camera_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Names of the given cameras (for other domains' reports)."""
    if not camera_ids:
        return {}
    rows = await session.execute(select(Camera.id, Camera.name).where(Camera.id.in_(camera_ids)))
    return {row.id: row.name for row in rows}


async def list_cameras(
    session: AsyncSession,
    *,
    page: PageParams,
    enabled: bool | None = None,
    zone_id: str | None = None,
    q: str | None = None,
) -> dict:
    """One page of cameras, filtered by enabled, zone and part of the name."""
    stmt: Select[Any] = select(Camera)
    if enabled is not None:
        stmt = stmt.where(Camera.enabled == enabled)
    if zone_id:
        stmt = stmt.where(Camera.zone_ids.contains([zone_id]))
    if q:
        stmt = stmt.where(Camera.name.icontains(q, autoescape=True))
    return await paginate(session, stmt.order_by(Camera.name, Camera.id), page)


async def update_camera(session: AsyncSession, *, camera_id: uuid.UUID, camera_in: CameraUpdate) -> Camera:
    """PATCH a camera: only `location` may be null; a masked password keeps the stored one."""
    camera = await get_camera(session, camera_id=camera_id)
    changes = patch_changes(camera_in)
    if "name" in changes and changes["name"] != camera.name:
        await _name_free(session, Camera, changes["name"], exclude=camera.id)
    if "zone_ids" in changes:
        await _check_zones(session, "zone_ids", changes["zone_ids"])
    if "rtsp_url" in changes:
        try:
            changes["rtsp_url"] = keep_masked_password(changes["rtsp_url"], camera.rtsp_url)
        except ValueError as exc:
            raise ValidationFailed(
                str(exc), errors=[{"loc": ["body", "rtsp_url"], "msg": str(exc), "type": "value_error"}]
            ) from None
    if "location" in changes:
        location = changes.pop("location")
        camera.lat, camera.lon = (location["lat"], location["lon"]) if location else (None, None)
    apply_patch(camera, changes)
    await flush_or_conflict(session, "The change conflicts with another camera.")
    logger.info("camera {} updated ({})", camera.id, ", ".join(sorted(camera_in.model_fields_set)))
    return camera


async def delete_camera(session: AsyncSession, *, camera: Camera) -> None:
    """Delete a camera and its sensors, detaching its zones (their `camera_id` becomes null, in the
    database); a camera with recorded plate events is kept (disable it instead)."""
    camera_id = camera.id
    await session.delete(camera)
    await flush_or_conflict(
        session, f"Camera {camera_id} has recorded events; disable it instead of deleting it."
    )
    logger.info("camera {} deleted", camera_id)


# --- model configs ---------------------------------------------------------------------------


async def _model_version_free(
    session: AsyncSession, name: str, version: str, *, exclude: uuid.UUID | None = None
) -> None:
    await ensure_unique(session, ModelConfig, name=name, version=version, exclude_id=exclude,
                        detail=f"Model {name!r} version {version!r} already exists.")


async def create_model(session: AsyncSession, *, model_in: ModelConfigCreate) -> ModelConfig:
    """Register a model config; (name, version) is unique."""
    await _model_version_free(session, model_in.name, model_in.version)
    model = ModelConfig(**model_in.model_dump())
    session.add(model)
    await flush_or_conflict(session, f"Model {model_in.name!r} version {model_in.version!r} already exists.")
    logger.info("model config {} created ({} {} {})", model.id, model.kind, model.name, model.version)
    return model


async def get_model(session: AsyncSession, *, model_id: uuid.UUID) -> ModelConfig:
    """One model config by id, or 404."""
    return await get_or_404(session, ModelConfig, model_id, error=ModelConfigNotFound)


async def list_models(
    session: AsyncSession, *, page: PageParams, kind: str | None = None, name: str | None = None
) -> dict:
    """One page of model configs, filtered by kind and name."""
    stmt: Select[Any] = select(ModelConfig)
    if kind:
        stmt = stmt.where(ModelConfig.kind == kind)
    if name:
        stmt = stmt.where(ModelConfig.name == name)
    return await paginate(session, stmt.order_by(ModelConfig.name, ModelConfig.version, ModelConfig.id), page)


async def update_model(
    session: AsyncSession, *, model_id: uuid.UUID, model_in: ModelConfigUpdate
) -> ModelConfig:
    """PATCH a model config; no field may be null; (name, version) stays unique."""
    model = await get_model(session, model_id=model_id)
    changes = patch_changes(model_in)
    name, version = changes.get("name", model.name), changes.get("version", model.version)
    if (name, version) != (model.name, model.version):
        await _model_version_free(session, name, version, exclude=model.id)
    apply_patch(model, changes)
    await flush_or_conflict(session, f"Model {name!r} version {version!r} already exists.")
    logger.info("model config {} updated", model.id)
    return model


async def delete_model(session: AsyncSession, *, model: ModelConfig) -> None:
    """Delete a model config (nothing references it)."""
    model_id = model.id
    await session.delete(model)
    await session.flush()
    logger.info("model config {} deleted", model_id)


# --- sensors ---------------------------------------------------------------------------------


async def _known_camera(session: AsyncSession, camera_id: uuid.UUID) -> None:
    if await session.get(Camera, camera_id) is None:
        raise unknown_reference("camera_id", camera_id)


async def create_sensor(session: AsyncSession, *, sensor_in: SensorCreate) -> Sensor:
    """Register a sensor on an existing camera, optionally in an existing zone."""
    await _name_free(session, Sensor, sensor_in.name)
    await _known_camera(session, sensor_in.camera_id)
    if sensor_in.zone_id is not None:
        await _check_zones(session, "zone_id", [sensor_in.zone_id])
    sensor = Sensor(**sensor_in.model_dump())
    session.add(sensor)
    await flush_or_conflict(session, f"A sensor named {sensor_in.name!r} already exists.")
    logger.info("sensor {} created (camera_id={} zone_id={})", sensor.id, sensor.camera_id, sensor.zone_id)
    return sensor


async def get_sensor(session: AsyncSession, *, sensor_id: uuid.UUID) -> Sensor:
    """One sensor by id, or 404."""
    return await get_or_404(session, Sensor, sensor_id, error=SensorNotFound)


async def list_sensors(
    session: AsyncSession, *, page: PageParams, camera_id: uuid.UUID | None = None, zone_id: str | None = None
) -> dict:
    """One page of sensors, filtered by camera and zone."""
    stmt: Select[Any] = select(Sensor)
    if camera_id:
        stmt = stmt.where(Sensor.camera_id == camera_id)
    if zone_id:
        stmt = stmt.where(Sensor.zone_id == zone_id)
    return await paginate(session, stmt.order_by(Sensor.name, Sensor.id), page)


async def update_sensor(session: AsyncSession, *, sensor_id: uuid.UUID, sensor_in: SensorUpdate) -> Sensor:
    """PATCH a sensor: only `zone_id` may be null (the sensor leaves its zone)."""
    sensor = await get_sensor(session, sensor_id=sensor_id)
    changes = patch_changes(sensor_in)
    if "name" in changes and changes["name"] != sensor.name:
        await _name_free(session, Sensor, changes["name"], exclude=sensor.id)
    if "camera_id" in changes:
        await _known_camera(session, changes["camera_id"])
    if changes.get("zone_id") is not None:
        await _check_zones(session, "zone_id", [changes["zone_id"]])
    apply_patch(sensor, changes)
    await flush_or_conflict(session, "The change conflicts with another sensor.")
    logger.info("sensor {} updated", sensor.id)
    return sensor


async def delete_sensor(session: AsyncSession, *, sensor: Sensor) -> None:
    """Delete a sensor (loaded by SensorDep); its camera and zones stay."""
    sensor_id = sensor.id
    await session.delete(sensor)
    await session.flush()
    logger.info("sensor {} deleted", sensor_id)


# --- zone references (for the zones domain) ------------------------------------------------


async def count_zone_references(session: AsyncSession, *, zone_id: str) -> dict[str, int]:
    """How many cameras list the zone in `zone_ids` and how many sensors have it as `zone_id`."""
    cameras = await session.scalar(select(func.count()).where(Camera.zone_ids.contains([zone_id])))
    sensors = await session.scalar(select(func.count()).where(Sensor.zone_id == zone_id))
    return {"cameras": cameras or 0, "sensors": sensors or 0}


async def clear_zone(session: AsyncSession, *, zone_id: str) -> dict[str, int]:
    """Drop a zone from every camera's `zone_ids` and every sensor's `zone_id` (before it is deleted)."""
    now = utcnow()
    cameras = await session.execute(
        update(Camera)
        .where(Camera.zone_ids.contains([zone_id]))
        .values(zone_ids=func.array_remove(Camera.zone_ids, zone_id), updated_at=now)
        .execution_options(synchronize_session="fetch")
    )
    sensors = await session.execute(
        update(Sensor)
        .where(Sensor.zone_id == zone_id)
        .values(zone_id=None, updated_at=now)
        .execution_options(synchronize_session="fetch")
    )
    # DML results are CursorResults (rowcount), typed as plain Results
    counts = {"cameras": cast(CursorResult[Any], cameras).rowcount,
              "sensors": cast(CursorResult[Any], sensors).rowcount}
    logger.info(
        "zone {} cleared from {} cameras and {} sensors", zone_id, counts["cameras"], counts["sensors"]
    )
    return counts
