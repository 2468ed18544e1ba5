"""Gateway routes."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.responses import Response

from vigil.assets.gateways import service
from vigil.assets.gateways.schemas import GatewayCreate, GatewayRead, GatewayUpdate
from vigil.assets.responses import responses
from vigil.core.deps import SessionDep
from vigil.core.pagination import Page, PageDep
from vigil.core.routing import Router

router = Router(tags=["assets"])


@router.post("/gateways", status_code=201, response_model=GatewayRead, responses=responses(409, 422))
async def create_gateway(body: GatewayCreate, session: SessionDep) -> Any:
    return await service.create_gateway(session, gateway_in=body)


@router.get("/gateways", response_model=Page[GatewayRead])
async def list_gateways(session: SessionDep, page: PageDep, site_id: uuid.UUID | None = None) -> dict:
    return await service.list_gateways(session, page=page, site_id=site_id)


@router.get("/gateways/{gateway_id}", response_model=GatewayRead, responses=responses(404))
async def get_gateway(gateway_id: uuid.UUID, session: SessionDep) -> Any:
    return await service.get_gateway(session, gateway_id=gateway_id)


@router.patch("/gateways/{gateway_id}", response_model=GatewayRead, responses=responses(404, 409, 422))
@router.put("/gateways/{gateway_id}", response_model=GatewayRead, responses=responses(404, 409, 422))
async def update_gateway(gateway_id: uuid.UUID, body: GatewayUpdate, session: SessionDep) -> Any:
    return await service.update_gateway(session, gateway_id=gateway_id, gateway_in=body)


@router.delete("/gateways/{gateway_id}", status_code=204, responses=responses(404))
async def delete_gateway(gateway_id: uuid.UUID, session: SessionDep) -> Response:
    await service.delete_gateway(session, gateway_id=gateway_id)
    return Response(status_code=204)
