"""Faces routes: events, images, clusters and search. Parse, call the service, shape the response."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from vigil.core.deps import SessionDep
from vigil.core.pagination import Page, PageDep
from vigil.core.storage import BlobStore
from vigil.faces import service
from vigil.faces.schemas import EventCreate, EventRead, EventReplace, EventUpdate

router = APIRouter(prefix="/faces", tags=["faces"])

EVENT_404: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown event code"}}
CodePath = Annotated[str, Path(max_length=64, description="The event's `code`.")]


def _storage(request: Request) -> BlobStore:
    return request.app.state.ctx.storage


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
async def delete_event(code: CodePath, session: SessionDep, request: Request) -> Response:
    """Delete the event with its images, faces, clusters and image files."""
    await service.delete_event(session, storage=_storage(request), code=code)
    return Response(status_code=204)


__all__ = ["router"]
