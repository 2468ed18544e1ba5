"""Faces routes: events, images, clusters and search. Parse, call the service, shape the response."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, File, Form, Path, Query, Response, UploadFile
from pydantic import Field, TypeAdapter, ValidationError

from vigil.core.deps import CtxDep, SessionDep, SettingsDep, StorageDep
from vigil.core.errors import ValidationFailed
from vigil.core.pagination import MAX_OFFSET, Page, PageDep
from vigil.core.routing import Router
from vigil.core.storage_http import blob_response
from vigil.faces import service
from vigil.faces.runtime import EXTENSION, FacesRuntime
from vigil.faces.schemas import (
    ClusterJobRead,
    ClusterRead,
    EventCreate,
    EventRead,
    EventReplace,
    EventUpdate,
    ImageRead,
    SearchResult,
)

router = Router(prefix="/faces", tags=["faces"])

EVENT_404: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown event code"}}
CodePath = Annotated[str, Path(max_length=64, description="The event's `code`.")]


async def _runtime(ctx: CtxDep) -> FacesRuntime:
    """The faces runtime (encoder pool, limits) its lifespan hook opened."""
    runtime: FacesRuntime = ctx.extensions[EXTENSION]
    return runtime


RuntimeDep = Annotated[FacesRuntime, Depends(_runtime)]
IMAGE_404: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown image"}}
UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"description": "The same file was already uploaded to this event: the stored image", "model": ImageRead},
    404: {"description": "Unknown event code"},
    409: {"description": "The event is not running"},
    413: {"description": "File over VIGIL_FACES_MAX_UPLOAD_BYTES or image over VIGIL_FACES_MAX_IMAGE_PIXELS"},
    415: {"description": "Not a JPEG, PNG or WebP image"},
}


async def read_upload(file: UploadFile, runtime: FacesRuntime) -> bytes:
    """The upload's bytes, read one past the cap so the service can refuse an oversized file."""
    return await file.read(runtime.settings.faces_max_upload_bytes + 1)


# --- events ---------------------------------------------------------------------------------


@router.post("/events", status_code=201, response_model=EventRead, responses={409: {"description": "Duplicate code"}})
async def create_event(body: EventCreate, session: SessionDep) -> Any:
    return await service.create_event(session, event_in=body)


@router.get("/events", response_model=Page[EventRead])
async def list_events(
    session: SessionDep,
    page: PageDep,
    running: bool | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Part of the code or name")] = None,
) -> dict:
    return await service.list_events(session, page=page, running=running, q=q)


@router.get("/events/{code}", response_model=EventRead, responses=EVENT_404)
async def get_event(code: CodePath, session: SessionDep) -> Any:
    return await service.get_event(session, code=code)


@router.patch("/events/{code}", response_model=EventRead, responses=EVENT_404)
async def update_event(code: CodePath, body: EventUpdate, session: SessionDep) -> Any:
    """Change the fields sent; `running: false` stops uploads (409) until it is true again."""
    return await service.update_event(session, code=code, changes=body.model_dump(exclude_unset=True))


@router.put("/events/{code}", response_model=EventRead, responses=EVENT_404)
async def replace_event(code: CodePath, body: EventReplace, session: SessionDep) -> Any:
    """Full update: fields left out take their defaults (`code` never changes)."""
    return await service.update_event(session, code=code, changes=body.model_dump())


@router.delete("/events/{code}", status_code=204, responses=EVENT_404)
async def delete_event(code: CodePath, session: SessionDep, storage: StorageDep) -> Response:
    """Delete the event with its images, faces, clusters and image files."""
    await service.delete_event(session, storage=storage, code=code)
    return Response(status_code=204)


# --- images ---------------------------------------------------------------------------------


@router.post("/images", status_code=201, response_model=ImageRead, responses=UPLOAD_ERRORS)
async def upload_image(
    file: Annotated[UploadFile, File(description="A JPEG, PNG or WebP photo.")],
    event_code: Annotated[str, Form(max_length=64)],
    session: SessionDep,
    storage: StorageDep,
    runtime: RuntimeDep,
    response: Response,
) -> Any:
    """Store a photo and its faces (each with a 128-d embedding and a cluster). A photo without
    faces is stored with `faces: []`. The same file again in the same event returns it with 200."""
    data = await read_upload(file, runtime)
    image, created = await service.upload_image(session, runtime=runtime, storage=storage, event_code=event_code,
                                                data=data, filename=file.filename)
    if not created:
        response.status_code = 200
    return image


@router.get("/images", response_model=Page[ImageRead], responses=EVENT_404)
async def list_images(
    session: SessionDep,
    page: PageDep,
    event_code: Annotated[str | None, Query(max_length=64)] = None,
    cluster_id: uuid.UUID | None = None,
) -> dict:
    """Newest first, each with its faces; `cluster_id` keeps images showing that person."""
    return await service.list_images(session, page=page, event_code=event_code, cluster_id=cluster_id)


@router.get("/images/{image_id}", response_model=ImageRead, responses=IMAGE_404)
async def get_image(image_id: uuid.UUID, session: SessionDep) -> Any:
    return await service.get_image(session, image_id=image_id)


@router.get("/images/{image_id}/file", response_class=Response,
            responses={**IMAGE_404, 307: {"description": "With VIGIL_BLOB_PRESIGN on S3: a presigned URL"}})
async def get_image_file(image_id: uuid.UUID, session: SessionDep, storage: StorageDep,
                         settings: SettingsDep) -> Response:
    """The stored file, byte for byte as uploaded (streamed, or a 307 to S3 with VIGIL_BLOB_PRESIGN)."""
    image = await service.image_row(session, image_id=image_id)
    return await blob_response(
        storage, settings, key=image.blob_key, media_type=image.content_type,
        headers={"ETag": f'"{image.sha256}"', "Cache-Control": "private, max-age=86400"},
        missing=lambda: service.ImageNotFound(f"The file of image {image_id} is missing."),
    )


@router.delete("/images/{image_id}", status_code=204, responses=IMAGE_404)
async def delete_image(image_id: uuid.UUID, session: SessionDep, storage: StorageDep) -> Response:
    """Delete the image, its faces and its file."""
    await service.delete_image(session, storage=storage, image_id=image_id)
    return Response(status_code=204)


# --- clusters -------------------------------------------------------------------------------


@router.get("/clusters", response_model=list[ClusterRead], responses=EVENT_404)
async def list_clusters(
    session: SessionDep,
    event_code: Annotated[str, Query(max_length=64)],
    sample: Annotated[int, Query(ge=0, le=50, description="Face ids shown per cluster")] = 5,
    min_size: Annotated[int, Query(ge=1, le=2**31 - 1, description="Leave out smaller clusters")] = 1,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Any:
    """The event's people: clusters biggest first, with sizes and sample face ids."""
    return await service.list_clusters(session, event_code=event_code, sample=sample, min_size=min_size,
                                       limit=limit, offset=offset)


@router.post("/clusters/recompute", status_code=202, response_model=ClusterJobRead, responses={
    404: {"description": "Unknown event code"}, 409: {"description": "A recompute of this event is already active"},
})
async def recompute_clusters(session: SessionDep, runtime: RuntimeDep,
                             event_code: Annotated[str, Query(max_length=64)]) -> Any:
    """Re-cluster every face of the event (Chinese whispers over 'L2 distance <= threshold') in the
    background. Follow it at `GET /faces/clusters/jobs/{id}`; cluster ids change when it is done."""
    return await service.request_recompute(session, event_code=event_code, on_queued=runtime.wake_jobs)


@router.get("/clusters/jobs/{job_id}", response_model=ClusterJobRead, responses={404: {"description": "Unknown job"}})
async def get_cluster_job(job_id: uuid.UUID, session: SessionDep) -> Any:
    """A recompute's status and progress."""
    return await service.get_job(session, job_id=job_id)


# --- search ---------------------------------------------------------------------------------

# pgvector computes distances in 32-bit floats: with components up to 1e18, a squared L2 distance over
# 128 dimensions stays finite there (beyond, the query is refused by the database or scores inf).
MAX_COMPONENT = 1e18
Component = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_COMPONENT, le=MAX_COMPONENT)]
EMBEDDING = TypeAdapter(list[Component])


def parse_embedding(raw: str) -> list[float]:
    """The `embedding` form field: a JSON array of finite numbers (a list type in a form would be
    read as repeated fields, so it travels as one JSON string)."""
    try:
        return EMBEDDING.validate_json(raw)
    except ValidationError as exc:
        raise ValidationFailed(f"embedding must be a JSON array of finite numbers within ±{MAX_COMPONENT:g}",
                               errors=[{"loc": ["body", "embedding", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                                       for e in exc.errors()]) from exc


@router.post("/search", response_model=SearchResult, responses={
    404: {"description": "Unknown event code"},
    413: {"description": "Query file too large"},
    415: {"description": "Not a JPEG, PNG or WebP image"},
    422: {"description": "No face in the query image, an embedding of the wrong length, or neither/both given"},
})
async def search(
    session: SessionDep,
    runtime: RuntimeDep,
    file: Annotated[UploadFile | None, File(description="Query photo; its largest face is searched.")] = None,
    embedding: Annotated[str | None, Form(description="Or a JSON array of 128 floats.")] = None,
    event_code: Annotated[str | None, Form(max_length=64, description="Search one event (exact); "
                                           "omit to search all events (HNSW index).")] = None,
    top_k: Annotated[int, Form(ge=1, le=100)] = 10,
    max_distance: Annotated[float | None, Form(gt=0, description="Drop matches farther than this L2 distance.")] = None,
    all_faces: Annotated[bool, Form(description="Search with every face of the query image.")] = False,
) -> Any:
    """Find faces like the one in a query image, nearest first. `distance` is Euclidean (L2)."""
    data = await read_upload(file, runtime) if file is not None else None
    vector = parse_embedding(embedding) if embedding is not None else None
    return await service.search(session, runtime=runtime, data=data, embedding=vector, event_code=event_code,
                                top_k=top_k, max_distance=max_distance, all_faces=all_faces)


__all__ = ["router"]
