"""Rule routes."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.responses import Response

from vigil.assets.responses import responses
from vigil.assets.rules import service
from vigil.assets.rules.schemas import RuleCreate, RuleKind, RuleRead, RuleUpdate
from vigil.core.deps import SessionDep
from vigil.core.pagination import Page, PageDep
from vigil.core.routing import Router

router = Router(tags=["assets"])


@router.post("/asset-rules", status_code=201, response_model=RuleRead, responses=responses(422))
async def create_rule(body: RuleCreate, session: SessionDep) -> Any:
    """`low_battery` {threshold, hysteresis}, `missing` {minutes}, `maintenance_overdue` {grace_minutes};
    for one asset, one site, or (neither) every asset."""
    return await service.create_rule(session, rule_in=body)


@router.get("/asset-rules", response_model=Page[RuleRead])
async def list_rules(session: SessionDep, page: PageDep, kind: RuleKind | None = None,
                     site_id: uuid.UUID | None = None, asset_id: uuid.UUID | None = None) -> dict:
    return await service.list_rules(session, page=page, kind=kind, site_id=site_id, asset_id=asset_id)


@router.get("/asset-rules/{rule_id}", response_model=RuleRead, responses=responses(404))
async def get_rule(rule_id: uuid.UUID, session: SessionDep) -> Any:
    return await service.get_rule(session, rule_id=rule_id)


@router.patch("/asset-rules/{rule_id}", response_model=RuleRead, responses=responses(404, 422))
@router.put("/asset-rules/{rule_id}", response_model=RuleRead, responses=responses(404, 422))
async def update_rule(rule_id: uuid.UUID, body: RuleUpdate, session: SessionDep) -> Any:
    return await service.update_rule(session, rule_id=rule_id, rule_in=body)


@router.delete("/asset-rules/{rule_id}", status_code=204, responses=responses(404))
async def delete_rule(rule_id: uuid.UUID, session: SessionDep) -> Response:
    await service.delete_rule(session, rule_id=rule_id)
    return Response(status_code=204)
