"""Site routes."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.responses import Response

from vigil.assets.responses import responses
from vigil.assets.sites import service
from vigil.assets.sites.schemas import SiteCreate, SiteRead, SiteUpdate
from vigil.core.deps import SessionDep
from vigil.core.pagination import Page, PageDep
from vigil.core.routing import Router

router = Router(tags=["assets"])


@router.post("/sites", status_code=201, response_model=SiteRead, responses=responses(409))
async def create_site(body: SiteCreate, session: SessionDep) -> Any:
    return await service.create_site(session, site_in=body)


@router.get("/sites", response_model=Page[SiteRead])
async def list_sites(session: SessionDep, page: PageDep) -> dict:
    return await service.list_sites(session, page=page)


@router.get("/sites/{site_id}", response_model=SiteRead, responses=responses(404))
async def get_site(site_id: uuid.UUID, session: SessionDep) -> Any:
    return await service.get_site(session, site_id=site_id)


@router.patch("/sites/{site_id}", response_model=SiteRead, responses=responses(404, 409))
@router.put("/sites/{site_id}", response_model=SiteRead, responses=responses(404, 409))
async def update_site(site_id: uuid.UUID, body: SiteUpdate, session: SessionDep) -> Any:
    return await service.update_site(session, site_id=site_id, site_in=body)


@router.delete("/sites/{site_id}", status_code=204, responses=responses(404, 409))
async def delete_site(site_id: uuid.UUID, session: SessionDep) -> Response:
    """409 while gateways, assets, geofences or jobs still belong to the site."""
    await service.delete_site(session, site_id=site_id)
    return Response(status_code=204)
