"""Gateway rules: CRUD, unique names, placed on an existing site.

Every function takes the request's session and keyword-only arguments, flushes (never commits) and
raises domain errors; the router turns them into responses.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.assets.gateways.models import Gateway
from vigil.assets.gateways.schemas import GatewayCreate, GatewayUpdate
from vigil.assets.sites.service import require_site
from vigil.core.crud import apply_patch, ensure_unique, get_or_404, patch_changes
from vigil.core.errors import NotFound
from vigil.core.pagination import PageParams, paginate


class GatewayNotFound(NotFound):
    title = "Gateway not found"


async def _unique_name(session: AsyncSession, name: str, *, exclude: uuid.UUID | None) -> None:
    await ensure_unique(session, Gateway, exclude_id=exclude, detail=f"A gateway named {name!r} already exists.",
                        name=name)


async def create_gateway(session: AsyncSession, *, gateway_in: GatewayCreate) -> Gateway:
    """Place a gateway on an existing site; its name is unique."""
    await require_site(session, gateway_in.site_id)
    await _unique_name(session, gateway_in.name, exclude=None)
    gateway = Gateway(**gateway_in.model_dump())
    session.add(gateway)
    await session.flush()
    return gateway


async def get_gateway(session: AsyncSession, *, gateway_id: uuid.UUID) -> Gateway:
    """One gateway by id, or 404."""
    return await get_or_404(session, Gateway, gateway_id, error=GatewayNotFound)


async def list_gateways(session: AsyncSession, *, page: PageParams, site_id: uuid.UUID | None = None) -> dict:
    """One page of gateways, optionally of one site."""
    stmt = select(Gateway).order_by(Gateway.name, Gateway.id)
    if site_id is not None:
        stmt = stmt.where(Gateway.site_id == site_id)
    return await paginate(session, stmt, page)


async def update_gateway(session: AsyncSession, *, gateway_id: uuid.UUID,
                         gateway_in: GatewayUpdate) -> Gateway:
    """PATCH a gateway: no field may be null (a null used to be dropped silently; now 422 like cameras)."""
    gateway = await get_gateway(session, gateway_id=gateway_id)
    changes = patch_changes(gateway_in)
    if "site_id" in changes:
        await require_site(session, changes["site_id"])
    if changes.get("name", gateway.name) != gateway.name:
        await _unique_name(session, changes["name"], exclude=gateway.id)
    apply_patch(gateway, changes)
    await session.flush()
    return gateway


async def delete_gateway(session: AsyncSession, *, gateway_id: uuid.UUID) -> None:
    """Delete a gateway; its past observations go with it (cascade)."""
    await session.delete(await get_gateway(session, gateway_id=gateway_id))
    await session.flush()
