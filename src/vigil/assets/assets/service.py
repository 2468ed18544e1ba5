"""Asset rules: CRUD, unique tag ids, an optional home site that must exist.

Every function takes the request's session and keyword-only arguments, flushes (never commits) and
raises domain errors; the router turns them into responses.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.assets.assets.models import Asset
from vigil.assets.assets.schemas import AssetCreate, AssetUpdate
from vigil.assets.sites.service import require_site
from vigil.core.crud import apply_patch, ensure_unique, get_or_404, patch_changes, unknown_reference
from vigil.core.errors import NotFound
from vigil.core.pagination import PageParams, paginate


class AssetNotFound(NotFound):
    title = "Asset not found"


async def require_asset(session: AsyncSession, asset_id: uuid.UUID | None) -> None:
    """Check an asset reference in a payload: unknown is a 422 (the payload is wrong), not a 404."""
    if asset_id is not None and await session.get(Asset, asset_id) is None:
        raise unknown_reference("asset_id", asset_id)


async def _unique_tag(session: AsyncSession, tag_id: str, *, exclude: uuid.UUID | None) -> None:
    await ensure_unique(session, Asset, exclude_id=exclude,
                        detail=f"An asset with tag_id {tag_id!r} already exists.", tag_id=tag_id)


async def create_asset(session: AsyncSession, *, asset_in: AssetCreate) -> Asset:
    """Register an asset; its tag_id is unique and its site, if given, must exist."""
    await require_site(session, asset_in.site_id)
    await _unique_tag(session, asset_in.tag_id, exclude=None)
    asset = Asset(**asset_in.model_dump())
    session.add(asset)
    await session.flush()
    return asset


async def get_asset(session: AsyncSession, *, asset_id: uuid.UUID) -> Asset:
    """One asset by id, or 404."""
    return await get_or_404(session, Asset, asset_id, error=AssetNotFound)


async def list_assets(session: AsyncSession, *, page: PageParams, site_id: uuid.UUID | None = None,
                      kind: str | None = None, tag_id: str | None = None, q: str | None = None) -> dict:
    """One page of assets, filtered by site, kind, tag and part of the name."""
    stmt = select(Asset).order_by(Asset.name, Asset.id)
    if site_id is not None:
        stmt = stmt.where(Asset.site_id == site_id)
    if kind is not None:
        stmt = stmt.where(Asset.kind == kind)
    if tag_id is not None:
        stmt = stmt.where(Asset.tag_id == tag_id)
    if q:
        stmt = stmt.where(Asset.name.icontains(q, autoescape=True))
    return await paginate(session, stmt, page)


async def update_asset(session: AsyncSession, *, asset_id: uuid.UUID, asset_in: AssetUpdate) -> Asset:
    """PATCH an asset: only `site_id` may be null; tag_id stays unique."""
    asset = await get_asset(session, asset_id=asset_id)
    changes = patch_changes(asset_in)  # only site_id may be null (an asset without a home site)
    if changes.get("site_id") is not None:
        await require_site(session, changes["site_id"])
    if changes.get("tag_id", asset.tag_id) != asset.tag_id:
        await _unique_tag(session, changes["tag_id"], exclude=asset.id)
    apply_patch(asset, changes)
    await session.flush()
    return asset


async def delete_asset(session: AsyncSession, *, asset_id: uuid.UUID) -> None:
    """Delete the asset with its observations, location history and fence state (cascade)."""
    await session.delete(await get_asset(session, asset_id=asset_id))
    await session.flush()
