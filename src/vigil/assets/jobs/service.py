"""Job rules: CRUD over existing assets, and the status machine open <-> in_progress -> done.

Every function takes the request's session and keyword-only arguments, flushes (never commits) and
raises domain errors; the router turns them into responses.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from vigil.assets.assets.models import Asset
from vigil.assets.jobs.models import Job
from vigil.assets.jobs.schemas import JobCreate, JobUpdate
from vigil.assets.sites.service import require_site
from vigil.core.crud import apply_patch, patch_changes, unknown_reference
from vigil.core.db import utcnow
from vigil.core.errors import InvalidState, NotFound
from vigil.core.pagination import PageParams, paginate


class JobNotFound(NotFound):
    title = "Job not found"


JOB_TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"in_progress", "done"}),
    "in_progress": frozenset({"open", "done"}),
    "done": frozenset(),
}


async def _assets_by_id(session: AsyncSession, asset_ids: Iterable[uuid.UUID]) -> list[Asset]:
    wanted = list(dict.fromkeys(asset_ids))
    if not wanted:
        return []
    found = {a.id: a for a in (await session.scalars(select(Asset).where(Asset.id.in_(wanted)))).all()}
    missing = [str(i) for i in wanted if i not in found]
    if missing:
        raise unknown_reference("asset_ids", missing, what="asset")
    return [found[i] for i in wanted]


def _jobs() -> Select[Job]:
    return select(Job).options(selectinload(Job.assets))


async def create_job(session: AsyncSession, *, job_in: JobCreate) -> Job:
    """Open a job on existing assets (and site, if given)."""
    await require_site(session, job_in.site_id)
    assets = await _assets_by_id(session, job_in.asset_ids)
    job = Job(**job_in.model_dump(exclude={"asset_ids"}), status="open")
    job.assets = assets
    session.add(job)
    await session.flush()
    return await get_job(session, job_id=job.id)


async def get_job(session: AsyncSession, *, job_id: uuid.UUID) -> Job:
    """One job with its assets, or 404 (not `crud.get_or_404`: it loads the assets in the same query)."""
    job = await session.scalar(_jobs().where(Job.id == job_id).execution_options(populate_existing=True))
    if job is None:
        raise JobNotFound(f"Job {job_id} does not exist.")
    return job


async def list_jobs(session: AsyncSession, *, page: PageParams, status: str | None = None,
                    asset_id: uuid.UUID | None = None, site_id: uuid.UUID | None = None) -> dict:
    """One page of jobs, newest first, filtered by status, site and asset."""
    stmt = _jobs().order_by(Job.created_at.desc(), Job.id)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if site_id is not None:
        stmt = stmt.where(Job.site_id == site_id)
    if asset_id is not None:
        stmt = stmt.where(Job.assets.any(Asset.id == asset_id))
    return await paginate(session, stmt, page)


async def update_job(session: AsyncSession, *, job_id: uuid.UUID, job_in: JobUpdate) -> Job:
    """Change a job's fields and move its status: open <-> in_progress -> done; done is final."""
    job = await get_job(session, job_id=job_id)
    changes = patch_changes(job_in)
    status = changes.pop("status", None)
    asset_ids = changes.pop("asset_ids", None)
    if job.status == "done" and (changes or asset_ids is not None or status not in (None, "done")):
        raise InvalidState(f"Job {job_id} is done and can no longer change.")
    if "site_id" in changes:
        await require_site(session, changes["site_id"])
    apply_patch(job, changes)
    if asset_ids is not None:
        job.assets = await _assets_by_id(session, asset_ids)
    if status is not None and status != job.status:
        if status not in JOB_TRANSITIONS[job.status]:
            raise InvalidState(f"A job cannot go from {job.status} to {status}.")
        now = utcnow()
        if status == "in_progress" and job.started_at is None:
            job.started_at = now
        if status == "done":
            job.completed_at = now
        job.status = status
    job.updated_at = utcnow()
    await session.flush()
    return await get_job(session, job_id=job.id)


async def delete_job(session: AsyncSession, *, job_id: uuid.UUID) -> None:
    """Delete a job (its asset links go with it)."""
    await session.delete(await get_job(session, job_id=job_id))
    await session.flush()
