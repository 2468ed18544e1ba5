"""Site rules: CRUD, unique names, and the guard that only an empty site may go.

Every function takes the request's session and keyword-only arguments, flushes (never commits) and
raises domain errors; the router turns them into responses.
"""

from __future__ import annotations

import uuid

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.assets.assets.models import Asset
from vigil.assets.gateways.models import Gateway
from vigil.assets.geofences.models import Geofence
from vigil.assets.jobs.models import Job
from vigil.assets.sites.models import Site
from vigil.assets.sites.schemas import SiteCreate, SiteUpdate
from vigil.core.crud import apply_patch, ensure_unique, get_or_404, patch_changes, unknown_reference
from vigil.core.errors import Conflict, NotFound
from vigil.core.pagination import PageParams, paginate


class SiteNotFound(NotFound):
    title = "Site not found"


async def require_site(session: AsyncSession, site_id: uuid.UUID | None) -> None:
    """Check a site reference in a payload: unknown is a 422 (the payload is wrong), not a 404."""
    if site_id is not None and await session.get(Site, site_id) is None:
        raise unknown_reference("site_id", site_id)


async def _unique_name(session: AsyncSession, name: str, *, exclude: uuid.UUID | None) -> None:
    await ensure_unique(session, Site, exclude_id=exclude, detail=f"A site named {name!r} already exists.",
                        name=name)


async def create_site(session: AsyncSession, *, site_in: SiteCreate) -> Site:
    """Create a site; its name is unique."""
    await _unique_name(session, site_in.name, exclude=None)
    site = Site(**site_in.model_dump())
    session.add(site)
    await session.flush()
    return site


async def get_site(session: AsyncSession, *, site_id: uuid.UUID) -> Site:
    """One site by id, or 404."""
    return await get_or_404(session, Site, site_id, error=SiteNotFound)


async def list_sites(session: AsyncSession, *, page: PageParams) -> dict:
    """One page of sites, by name."""
    return await paginate(session, select(Site).order_by(Site.name, Site.id), page)


async def update_site(session: AsyncSession, *, site_id: uuid.UUID, site_in: SiteUpdate) -> Site:
    """PATCH a site: only `description` may be null; the name stays unique."""
    site = await get_site(session, site_id=site_id)
    changes = patch_changes(site_in)
    if changes.get("name", site.name) != site.name:
        await _unique_name(session, changes["name"], exclude=site.id)
    apply_patch(site, changes)
    await session.flush()
    return site


async def delete_site(session: AsyncSession, *, site_id: uuid.UUID) -> None:
    """Delete an empty site; one that still has gateways, assets, geofences or jobs is a 409."""
    site = await get_site(session, site_id=site_id)
    for model, what in ((Gateway, "gateways"), (Asset, "assets"), (Geofence, "geofences"), (Job, "jobs")):
        if await session.scalar(select(exists().where(model.site_id == site_id))):
            raise Conflict(f"Site {site_id} still has {what}; delete or move them first.")
    await session.delete(site)
    await session.flush()
