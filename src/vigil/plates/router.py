"""Plate routes: ingest (JSON or multipart), search, stats, images, and the `/ws/plates` stream."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Query, Request, Response, WebSocket
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from vigil.core.config import Settings
from vigil.core.deps import HubDep, SessionDep, SettingsDep, StorageDep
from vigil.core.errors import UnsupportedMediaType, ValidationFailed
from vigil.core.pagination import Page, PageDep
from vigil.core.routing import Router
from vigil.core.security import requires
from vigil.core.storage import BlobStore
from vigil.core.storage_http import blob_response
from vigil.core.types import LenientUtcDatetime
from vigil.plates import service
from vigil.plates.normalize import normalize_plate
from vigil.plates.schemas import (
    PlateEventCreate,
    PlateEventRead,
    PlateStats,
    WatchlistCreate,
    WatchlistRead,
    WatchlistUpdate,
)

router = Router(prefix="/plates", tags=["plates"])
ws_router = Router(tags=["plates"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown event or no such image"}}


def _inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema, `$defs` inlined: no route takes it as a body, so it has no component."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)


_EVENT_SCHEMA = _inline_schema(PlateEventCreate)
INGEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _EVENT_SCHEMA},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["event"],
                    "properties": {
                        "event": {"type": "string", "description": "The event as JSON"},
                        "frame": {"type": "string", "format": "binary"},
                        "crop": {"type": "string", "format": "binary"},
                    },
                }
            },
        },
    }
}


def _parse_event(raw: bytes | str, loc: tuple[str, ...]) -> PlateEventCreate:
    try:
        return PlateEventCreate.model_validate_json(raw)
    except ValidationError as exc:
        errors = [
            {**e, "loc": (*loc, *e["loc"])} for e in exc.errors(include_url=False, include_context=False)
        ]
        raise RequestValidationError(errors) from None


async def _read_request(request: Request, max_image_bytes: int) -> tuple[PlateEventCreate, dict[str, bytes]]:
    """The event and its images, from a JSON body or a multipart form (`event`, `frame`, `crop`)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        return _parse_event(await request.body(), ("body",)), {}
    if content_type != "multipart/form-data":
        raise UnsupportedMediaType("Send the event as application/json or multipart/form-data.")
    # The context manager closes the spooled upload files as soon as their bytes are read.
    async with request.form(max_files=4, max_fields=4, max_part_size=64 * 1024) as form:
        names = list(form.keys())
        if len(names) != len(set(names)) or set(names) - {"event", *service.IMAGE_PARTS}:
            raise ValidationFailed("Parts must be 'event' and optionally one 'frame' and one 'crop'.")
        raw_event = form.get("event")
        if raw_event is None:
            raise ValidationFailed(
                "The multipart body needs an 'event' part with the event JSON.",
                errors=[{"loc": ["body", "event"], "msg": "Field required", "type": "missing"}],
            )
        event_in = _parse_event(
            await raw_event.read() if isinstance(raw_event, UploadFile) else raw_event, ("body", "event")
        )
        images: dict[str, bytes] = {}
        for part in service.IMAGE_PARTS:
            upload = form.get(part)
            if upload is None:
                continue
            if not isinstance(upload, UploadFile):
                raise UnsupportedMediaType(f"'{part}' must be an image file part.")
            # One byte past the limit is enough to know it is too large without reading it all.
            images[part] = await upload.read(max_image_bytes + 1)
    return event_in, images


@router.post(
    "/events",
    status_code=201,
    response_model=PlateEventRead,
    openapi_extra=INGEST_BODY,
    responses={
        200: {"description": "Repeat of a known event_uid: the first event"},
        413: {"description": "Image too large"},
        415: {"description": "Not an image"},
    },
)
@requires("ingest")
async def ingest_event(
    request: Request, response: Response, session: SessionDep, settings: SettingsDep, storage: StorageDep
) -> Any:
    """Store a plate read (201), or return the first event for a known `event_uid` (200)."""
    event_in, images = await _read_request(request, settings.plate_image_max_bytes)
    event, created = await service.ingest_event(
        session,
        storage=storage,
        event_in=event_in,
        images=images,
        max_image_bytes=settings.plate_image_max_bytes,
        max_image_pixels=settings.plate_image_max_pixels,
    )
    response.status_code = 201 if created else 200
    return event


@router.get("/events", response_model=Page[PlateEventRead])
async def list_events(
    session: SessionDep,
    page: PageDep,
    plate: Annotated[str | None, Query(max_length=50, description="Case and separators ignored")] = None,
    max_distance: Annotated[int, Query(ge=0, le=3, description="Edits allowed from `plate`")] = 0,
    camera_id: uuid.UUID | None = None,
    since: LenientUtcDatetime | None = None,
    until: LenientUtcDatetime | None = None,
    min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
) -> dict:
    return await service.list_events(
        session,
        page=page,
        plate=plate,
        max_distance=max_distance,
        camera_id=camera_id,
        since=since,
        until=until,
        min_confidence=min_confidence,
    )


@router.get("/stats", response_model=PlateStats)
async def plate_stats(
    session: SessionDep,
    since: LenientUtcDatetime | None = None,
    until: LenientUtcDatetime | None = None,
    top: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict:
    return await service.stats(session, since=since, until=until, top=top)


@router.get("/events/{event_id}", response_model=PlateEventRead, responses=NOT_FOUND)
async def get_event(event_id: uuid.UUID, session: SessionDep) -> Any:
    return await service.get_event(session, event_id=event_id)


async def _image(storage: BlobStore, settings: Settings, session: SessionDep, event_id: uuid.UUID,
                 part: str) -> Response:
    key, media_type = await service.image_ref(session, event_id=event_id, part=part)
    # Content-addressed: the bytes behind an event never change.
    return await blob_response(storage, settings, key=key, media_type=media_type,
                               headers={"Cache-Control": "private, max-age=86400, immutable"},
                               missing=lambda: service.image_gone(event_id, part, key))


IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND, 307: {"description": "With VIGIL_BLOB_PRESIGN on S3: a short-lived presigned URL"},
}


@router.get("/events/{event_id}/frame", responses=IMAGE_RESPONSES, response_class=Response)
async def get_frame(event_id: uuid.UUID, session: SessionDep, storage: StorageDep,
                    settings: SettingsDep) -> Response:
    return await _image(storage, settings, session, event_id, "frame")


@router.get("/events/{event_id}/crop", responses=IMAGE_RESPONSES, response_class=Response)
async def get_crop(event_id: uuid.UUID, session: SessionDep, storage: StorageDep,
                   settings: SettingsDep) -> Response:
    return await _image(storage, settings, session, event_id, "crop")


@router.post(
    "/watchlist",
    status_code=201,
    response_model=WatchlistRead,
    responses={409: {"description": "Plate already listed"}},
)
async def add_to_watchlist(body: WatchlistCreate, session: SessionDep) -> Any:
    """Watch for a plate (matched in normalised form); a sighting raises a `watchlist_hit` alert."""
    return await service.add_to_watchlist(session, entry_in=body)


@router.get("/watchlist", response_model=Page[WatchlistRead])
async def list_watchlist(
    session: SessionDep, page: PageDep, plate: Annotated[str | None, Query(max_length=50)] = None
) -> dict:
    return await service.list_watchlist(session, page=page, plate=plate)


@router.get("/watchlist/{entry_id}", response_model=WatchlistRead, responses=NOT_FOUND)
async def get_watchlist_entry(entry_id: uuid.UUID, session: SessionDep) -> Any:
    return await service.get_watchlist_entry(session, entry_id=entry_id)


@router.patch("/watchlist/{entry_id}", response_model=WatchlistRead, responses=NOT_FOUND)
async def update_watchlist_entry(entry_id: uuid.UUID, body: WatchlistUpdate, session: SessionDep) -> Any:
    return await service.update_watchlist_entry(session, entry_id=entry_id, entry_in=body)


@router.delete("/watchlist/{entry_id}", status_code=204, responses=NOT_FOUND)
async def remove_from_watchlist(entry_id: uuid.UUID, session: SessionDep) -> Response:
    await service.remove_from_watchlist(session, entry_id=entry_id)
    return Response(status_code=204)


@ws_router.websocket("/plates")
async def plates_stream(
    websocket: WebSocket,
    hub: HubDep,
    camera_id: uuid.UUID | None = None,
    plate: Annotated[str | None, Query(max_length=50)] = None,
) -> None:
    """Every new plate event as `plate.event`, optionally only one camera's or one (normalised) plate's."""
    wanted = normalize_plate(plate) if plate else None

    def match(data: dict[str, Any]) -> bool:
        if camera_id is not None and data.get("camera_id") != str(camera_id):
            return False
        return wanted is None or data.get("plate_normalized") == wanted

    await hub.serve(websocket, types=("plate.event",), match=match)


__all__ = ["router", "ws_router"]
