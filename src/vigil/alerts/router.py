"""Alert routes and the live `/ws/alerts` stream."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, WebSocket

from vigil.alerts import service
from vigil.alerts.schemas import AlertRead, RecentMessage, Severity, Status
from vigil.core.deps import SessionDep
from vigil.core.pagination import Page, PageDep
from vigil.core.security import CurrentPrincipal
from vigil.core.types import LenientUtcDatetime
from vigil.core.ws import field_filter

router = APIRouter(prefix="/alerts", tags=["alerts"])
ws_router = APIRouter(tags=["alerts"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown alert"}}


@router.get("", response_model=Page[AlertRead])
async def list_alerts(
    session: SessionDep,
    page: PageDep,
    status: Status | None = None,
    severity: Severity | None = None,
    source: Annotated[str | None, Query(max_length=50)] = None,
    kind: Annotated[str | None, Query(max_length=100)] = None,
    subject: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[LenientUtcDatetime | None, Query(description="Alerts active at or after this time (UTC if no offset)")] = None,
) -> dict:
    return await service.list_alerts(session, page=page, status=status, severity=severity, source=source,
                                     kind=kind, subject=subject, since=since)


@router.get("/messages/recent", response_model=list[RecentMessage])
async def recent_messages(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> Any:
    """The latest raw messages seen on the alert topics (`person_reid_alerts`), newest first."""
    return await service.recent_messages(request.app.state.ctx.redis, limit=limit)


@router.get("/{alert_id}", response_model=AlertRead, responses=NOT_FOUND)
async def get_alert(alert_id: uuid.UUID, session: SessionDep) -> Any:
    return await service.get_alert(session, alert_id=alert_id)


@router.post("/{alert_id}/acknowledge", response_model=AlertRead, responses=NOT_FOUND)
@router.put("/{alert_id}/acknowledge", response_model=AlertRead, responses=NOT_FOUND,
            operation_id="acknowledge_alert_put")
async def acknowledge(alert_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> Any:
    """Idempotent: acknowledging twice, or a resolved alert, returns it unchanged."""
    return await service.acknowledge(session, alert_id=alert_id, by=principal.name)


@router.post("/{alert_id}/resolve", response_model=AlertRead, responses=NOT_FOUND)
@router.put("/{alert_id}/resolve", response_model=AlertRead, responses=NOT_FOUND, operation_id="resolve_alert_put")
async def resolve(alert_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> Any:
    """Idempotent: resolving twice returns the alert unchanged."""
    return await service.resolve(session, alert_id=alert_id, by=principal.name)


def alert_matcher(severity: str | None, source: str | None, zone_id: str | None, kind: str | None
                  ) -> Callable[[dict[str, Any]], bool]:
    """Top-level fields of the alert, and `zone_id` inside its `data` (where the sources put it)."""
    top = field_filter({"severity": severity, "source": source, "kind": kind})
    zone = field_filter({"zone_id": zone_id})
    return lambda alert: top(alert) and zone(alert.get("data") or {})


@ws_router.websocket("/alerts")
async def alerts_stream(
    websocket: WebSocket,
    severity: Severity | None = None,
    source: str | None = None,
    zone_id: str | None = None,
    kind: str | None = None,
) -> None:
    """`alert.created` / `alert.updated` as they happen, narrowed by severity, source, kind, zone_id."""
    await websocket.app.state.ctx.hub.serve(
        websocket, types=("alert.",), match=alert_matcher(severity, source, zone_id, kind)
    )


__all__ = ["router", "ws_router"]
