"""Asset routes."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import Response

from vigil.assets.assets import service
from vigil.assets.assets.schemas import AssetCreate, AssetRead, AssetUpdate
from vigil.assets.responses import responses
from vigil.core.deps import SessionDep
from vigil.core.pagination import Page, PageDep
from vigil.core.routing import Router

router = Router(tags=["assets"])


@router.post("/assets", status_code=201, response_model=AssetRead, responses=responses(409, 422))
async def create_asset(body: AssetCreate, session: SessionDep) -> Any:
    return await service.create_asset(session, asset_in=body)


@router.get("/assets", response_model=Page[AssetRead])
async def list_assets(
    session: SessionDep,
    page: PageDep,
    site_id: uuid.UUID | None = None,
    kind: Annotated[str | None, Query(max_length=100)] = None,
    tag_id: Annotated[str | None, Query(max_length=100)] = None,
    q: Annotated[str | None, Query(max_length=200, description="Name contains (case-insensitive)")] = None,
) -> dict:
    return await service.list_assets(session, page=page, site_id=site_id, kind=kind, tag_id=tag_id, q=q)


@router.get("/assets/{asset_id}", response_model=AssetRead, responses=responses(404))
async def get_asset(asset_id: uuid.UUID, session: SessionDep) -> Any:
    return await service.get_asset(session, asset_id=asset_id)


@router.patch("/assets/{asset_id}", response_model=AssetRead, responses=responses(404, 409, 422))
@router.put("/assets/{asset_id}", response_model=AssetRead, responses=responses(404, 409, 422))
async def update_asset(asset_id: uuid.UUID, body: AssetUpdate, session: SessionDep) -> Any:
    return await service.update_asset(session, asset_id=asset_id, asset_in=body)


@router.delete("/assets/{asset_id}", status_code=204, responses=responses(404))
async def delete_asset(asset_id: uuid.UUID, session: SessionDep) -> Response:
    await service.delete_asset(session, asset_id=asset_id)
    return Response(status_code=204)
