"""Job routes."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.responses import Response

from vigil.assets.jobs import service
from vigil.assets.jobs.schemas import JobCreate, JobRead, JobStatus, JobUpdate
from vigil.assets.responses import responses
from vigil.core.deps import SessionDep
from vigil.core.pagination import Page, PageDep
from vigil.core.routing import Router

router = Router(tags=["assets"])


@router.post("/jobs", status_code=201, response_model=JobRead, responses=responses(422))
async def create_job(body: JobCreate, session: SessionDep) -> Any:
    return await service.create_job(session, job_in=body)


@router.get("/jobs", response_model=Page[JobRead])
async def list_jobs(session: SessionDep, page: PageDep, status: JobStatus | None = None,
                    asset_id: uuid.UUID | None = None, site_id: uuid.UUID | None = None) -> dict:
    return await service.list_jobs(session, page=page, status=status, asset_id=asset_id, site_id=site_id)


@router.get("/jobs/{job_id}", response_model=JobRead, responses=responses(404))
async def get_job(job_id: uuid.UUID, session: SessionDep) -> Any:
    return await service.get_job(session, job_id=job_id)


@router.patch("/jobs/{job_id}", response_model=JobRead, responses=responses(404, 409, 422))
@router.put("/jobs/{job_id}", response_model=JobRead, responses=responses(404, 409, 422))
async def update_job(job_id: uuid.UUID, body: JobUpdate, session: SessionDep) -> Any:
    """Also moves the status: open <-> in_progress -> done (409 otherwise)."""
    return await service.update_job(session, job_id=job_id, job_in=body)


@router.delete("/jobs/{job_id}", status_code=204, responses=responses(404))
async def delete_job(job_id: uuid.UUID, session: SessionDep) -> Response:
    await service.delete_job(session, job_id=job_id)
    return Response(status_code=204)
