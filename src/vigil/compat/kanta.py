"""Kanta's routes: `/events` (by `code`), `/pics` uploads and listing, `/clusters` and `/find-similar`.

Each route is the faces API itself under the seed's path: the same upload limits, dedupe, clustering
and search. `/clusters?cluster_id=` answers 307 to the filtered `/pics`, as the seed's UI expects.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import File, Form, Path, Query, Response, UploadFile
from fastapi.responses import RedirectResponse

from vigil.compat import TAG, SeedPage, items
from vigil.core.deps import SessionDep, StorageDep
from vigil.core.pagination import MAX_OFFSET
from vigil.core.routing import Router
from vigil.faces import router as faces_api
from vigil.faces import service as faces
from vigil.faces.router import RuntimeDep
from vigil.faces.schemas import ClusterRead, EventCreate, EventRead, EventReplace, ImageRead, SearchResult

router = Router(tags=[TAG])
EventIdPath = Annotated[str, Path(max_length=64, description="The event's `code`.")]
EVENT_404: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown event code"}}
IMAGE_404: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown image"}}


# --- events ----------------------------------------------------------------------------------


@router.get("/events", response_model=list[EventRead])
async def list_events(session: SessionDep, page: SeedPage, running: bool | None = None) -> Any:
    return items(await faces.list_events(session, page=page, running=running))


@router.post("/events", status_code=201, response_model=EventRead, responses={409: {"description": "Duplicate code"}})
async def create_event(body: EventCreate, session: SessionDep) -> Any:
    return await faces.create_event(session, event_in=body)


@router.get("/events/{event_id}", response_model=EventRead, responses=EVENT_404)
async def get_event(event_id: EventIdPath, session: SessionDep) -> Any:
    return await faces.get_event(session, code=event_id)


@router.put("/events/{event_id}", response_model=EventRead, responses=EVENT_404)
async def put_event(event_id: EventIdPath, body: EventReplace, session: SessionDep) -> Any:
    """Full update: fields left out take their defaults (`code` never changes)."""
    return await faces.update_event(session, code=event_id, changes=body.model_dump())


@router.delete("/events/{event_id}", status_code=204, responses=EVENT_404)
async def delete_event(event_id: EventIdPath, session: SessionDep, storage: StorageDep) -> Response:
    await faces.delete_event(session, storage=storage, code=event_id)
    return Response(status_code=204)


# --- pics ------------------------------------------------------------------------------------


@router.post("/pics", status_code=201, response_model=ImageRead, responses=faces_api.UPLOAD_ERRORS)
async def upload_pic(
    file: Annotated[UploadFile, File(description="A JPEG, PNG or WebP photo.")],
    event_code: Annotated[str, Form(max_length=64)],
    session: SessionDep,
    storage: StorageDep,
    runtime: RuntimeDep,
    response: Response,
) -> Any:
    """As `POST /api/v1/faces/images`: the photo, its faces and their clusters."""
    return await faces_api.upload_image(file, event_code, session, storage, runtime, response)


@router.get("/pics", response_model=list[ImageRead], responses=EVENT_404)
async def list_pics(session: SessionDep, page: SeedPage,
                    event_code: Annotated[str | None, Query(max_length=64)] = None,
                    cluster_id: uuid.UUID | None = None) -> Any:
    return items(await faces.list_images(session, page=page, event_code=event_code, cluster_id=cluster_id))


@router.get("/pics/{image_uuid}", response_model=ImageRead, responses=IMAGE_404)
async def get_pic(image_uuid: uuid.UUID, session: SessionDep) -> Any:
    return await faces.get_image(session, image_id=image_uuid)


@router.delete("/pics/{image_uuid}", status_code=204, responses=IMAGE_404)
async def delete_pic(image_uuid: uuid.UUID, session: SessionDep, storage: StorageDep) -> Response:
    await faces.delete_image(session, storage=storage, image_id=image_uuid)
    return Response(status_code=204)


# --- clusters and search -------------------------------------------------------------------------


@router.get("/clusters", response_model=list[ClusterRead],
            responses={**EVENT_404, 307: {"description": "With `cluster_id`: the pictures of that cluster, at /pics"}})
async def clusters(
    session: SessionDep,
    event_code: Annotated[str, Query(max_length=64)],
    cluster_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Any:
    """The event's clusters, biggest first; with `cluster_id`, a redirect to that cluster's pictures."""
    if cluster_id is not None:
        query = urlencode({"event_code": event_code, "cluster_id": str(cluster_id), "limit": limit, "offset": offset})
        return RedirectResponse(f"/pics?{query}", status_code=307)
    return await faces.list_clusters(session, event_code=event_code, limit=limit, offset=offset)


@router.post("/find-similar", response_model=SearchResult, responses={
    404: {"description": "Unknown event code"}, 413: {"description": "Query file too large"},
    415: {"description": "Not a JPEG, PNG or WebP image"}, 422: {"description": "No face in the query image"},
})
async def find_similar(
    session: SessionDep,
    runtime: RuntimeDep,
    file: Annotated[UploadFile, File(description="Query photo; its largest face is searched.")],
    event_code: Annotated[str | None, Form(max_length=64)] = None,
    top_k: Annotated[int, Form(ge=1, le=100)] = 10,
    max_distance: Annotated[float | None, Form(gt=0)] = None,
) -> Any:
    """As `POST /api/v1/faces/search` with a file: nearest faces first, with their L2 distance."""
    return await faces_api.search(session, runtime, file=file, event_code=event_code, top_k=top_k,
                                  max_distance=max_distance)


__all__ = ["router"]
