"""People routes: CRUD, the cached directory, stats, and the ReID gallery (embeddings, identify)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Query, Response

from vigil.core.deps import CacheDep, CtxDep, SessionDep, SettingsDep
from vigil.core.pagination import Page, PageDep
from vigil.core.reads import json_rows
from vigil.core.routing import Router
from vigil.people import service
from vigil.people.deps import PersonDep, PersonReadDep
from vigil.people.gallery import AnyGallery, GalleryUnavailable, open_gallery
from vigil.people.schemas import (
    DirectoryEntry,
    EmbeddingsIn,
    EmbeddingsStored,
    IdentifyIn,
    IdentifyOut,
    PeopleStats,
    PersonCreate,
    PersonRead,
    PersonUpdate,
)

router = Router(prefix="/people", tags=["people"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown person"}}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {409: {"description": "Duplicate global_id"},
                                                 422: {"description": "Unknown zone_id"}}


async def optional_gallery(ctx: CtxDep, settings: SettingsDep) -> AnyGallery | None:
    """The ReID gallery (pgvector or Qdrant, by VIGIL_GALLERY_BACKEND), or None for Qdrant when this
    instance has none (then nobody has vectors here)."""
    return open_gallery(ctx, settings)


async def require_gallery(gallery: Annotated[AnyGallery | None, Depends(optional_gallery)]) -> AnyGallery:
    if gallery is None:
        raise GalleryUnavailable("Qdrant is not configured or could not be opened on this instance.")
    return gallery


GalleryDep = Annotated[AnyGallery, Depends(require_gallery)]
OptionalGalleryDep = Annotated[AnyGallery | None, Depends(optional_gallery)]


@router.post("", status_code=201, response_model=PersonRead, responses=WRITE_ERRORS)
async def create_person(body: PersonCreate, session: SessionDep, cache: CacheDep) -> Any:
    return await service.create_person(session, person_in=body, cache=cache)


@router.get("", response_model=Page[PersonRead])
async def list_people(
    session: SessionDep,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=200, description="Part of the name, any case")] = None,
    zone_id: Annotated[str | None, Query(max_length=64)] = None,
) -> dict:
    return await service.list_people(session, page=page, q=q, zone_id=zone_id)


@router.get("/directory", response_model=dict[str, DirectoryEntry])
async def directory(ctx: CtxDep) -> Response:
    """{"<global_id>": {"name", "zone_id"}} for everyone; served from the cache (`people.directory`)."""
    # The cached JSON bytes as they are: the service built them from typed rows, and decoding,
    # re-validating and re-encoding every entry on each hit would cost more than the hit saves.
    # No request session: a hit needs none, and a miss opens its own.
    sessions = ctx.read_sessionmaker or ctx.sessionmaker
    return Response(await service.directory_json(sessions, cache=ctx.cache), media_type="application/json")


@router.get("/stats", response_model=PeopleStats)
async def people_stats(session: SessionDep) -> dict:
    return await service.stats(session)


@router.post("/identify", response_model=IdentifyOut, responses={422: {"description": "Wrong dimension"}})
async def identify(body: IdentifyIn, session: SessionDep, gallery: GalleryDep) -> dict:
    """Best matching people for one embedding (cosine similarity), best first."""
    matches = await service.identify(session, vector=body.vector, top_k=body.top_k, min_score=body.min_score,
                                     gallery=gallery)
    return {"matches": matches}


@router.get("/{person_id}", response_model=PersonRead, responses=NOT_FOUND)
async def get_person(person: PersonReadDep) -> Response:
    # The row's columns are PersonRead's fields with its types: encoded as the model would encode them,
    # without validating them into it first (core.reads.json_rows; a test compares the bytes).
    return json_rows(person)


@router.patch("/{person_id}", response_model=PersonRead, responses={**NOT_FOUND, **WRITE_ERRORS})
async def patch_person(person_id: uuid.UUID, body: PersonUpdate, session: SessionDep, cache: CacheDep) -> Any:
    return await service.update_person(session, person_id=person_id, person_in=body, cache=cache)


@router.put("/{person_id}", response_model=PersonRead, responses={**NOT_FOUND, **WRITE_ERRORS})
async def put_person(person_id: uuid.UUID, body: PersonCreate, session: SessionDep, cache: CacheDep) -> Any:
    """Full update: every field is replaced (a zone left out becomes null)."""
    return await service.update_person(session, person_id=person_id, person_in=body, cache=cache)


@router.delete("/{person_id}", status_code=204, responses=NOT_FOUND)
async def delete_person(person: PersonDep, session: SessionDep, cache: CacheDep,
                        gallery: OptionalGalleryDep) -> Response:
    """Deletes the person's ReID vectors too."""
    await service.delete_person(session, person=person, cache=cache, gallery=gallery)
    return Response(status_code=204)


@router.post("/{person_id}/embeddings", status_code=201, response_model=EmbeddingsStored,
             responses={**NOT_FOUND, 422: {"description": "Wrong dimension, NaN/inf or empty vector"}})
async def add_embeddings(person_id: uuid.UUID, body: EmbeddingsIn, session: SessionDep,
                         gallery: GalleryDep) -> dict:
    """Store ReID vectors of this person; the gallery's first vector fixes its dimension."""
    return await service.add_embeddings(session, person_id=person_id, vectors=body.vectors,
                                        camera_id=body.camera_id, model=body.model, gallery=gallery)


__all__ = ["router"]
