"""Maintenance routes."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.responses import Response

from vigil.assets.maintenance import service
from vigil.assets.maintenance.schemas import MaintenanceCreate, MaintenanceRead, MaintenanceUpdate
from vigil.assets.responses import responses
from vigil.core.deps import SessionDep
from vigil.core.pagination import Page, PageDep
from vigil.core.routing import Router

router = Router(tags=["assets"])


@router.post("/maintenance", status_code=201, response_model=MaintenanceRead, responses=responses(422))
async def create_maintenance(body: MaintenanceCreate, session: SessionDep) -> Any:
    return await service.create_maintenance(session, record_in=body)


@router.get("/maintenance", response_model=Page[MaintenanceRead])
async def list_maintenance(session: SessionDep, page: PageDep, asset_id: uuid.UUID | None = None,
                           overdue: bool | None = None, done: bool | None = None) -> dict:
    return await service.list_maintenance(session, page=page, asset_id=asset_id, overdue=overdue, done=done)


@router.get("/maintenance/{record_id}", response_model=MaintenanceRead, responses=responses(404))
async def get_maintenance(record_id: uuid.UUID, session: SessionDep) -> Any:
    return await service.get_maintenance(session, record_id=record_id)


@router.patch("/maintenance/{record_id}", response_model=MaintenanceRead, responses=responses(404, 422))
@router.put("/maintenance/{record_id}", response_model=MaintenanceRead, responses=responses(404, 422))
async def update_maintenance(record_id: uuid.UUID, body: MaintenanceUpdate, session: SessionDep) -> Any:
    """Setting `done_at` resolves the overdue alert, if one was raised."""
    return await service.update_maintenance(session, record_id=record_id, record_in=body)


@router.delete("/maintenance/{record_id}", status_code=204, responses=responses(404))
async def delete_maintenance(record_id: uuid.UUID, session: SessionDep) -> Response:
    await service.delete_maintenance(session, record_id=record_id)
    return Response(status_code=204)
