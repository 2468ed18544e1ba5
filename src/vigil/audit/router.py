"""`GET /api/v1/admin/audit` (admin): who changed what, newest first."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query

from vigil.audit import service
from vigil.audit.schemas import AuditRead
from vigil.core.deps import SessionDep
from vigil.core.pagination import Page, PageDep
from vigil.core.routing import Router
from vigil.core.security import requires
from vigil.core.types import LenientUtcDatetime

router = Router(prefix="/admin/audit", tags=["admin"])


@router.get("", response_model=Page[AuditRead])
@requires("admin")
async def list_audit(
    session: SessionDep,
    page: PageDep,
    since: Annotated[LenientUtcDatetime | None, Query(description="Entries at or after this time (ISO 8601)")] = None,
    key_id: Annotated[uuid.UUID | None, Query(description="Entries made with this API key")] = None,
) -> dict:
    """Write and admin actions (refused ones included): principal, key, method, route, action, target,
    status, request id. Entries reach the table within about a second (they are written in batches)."""
    return await service.list_audit(session, page=page, since=since, key_id=key_id)


__all__ = ["router"]
