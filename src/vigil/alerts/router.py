"""Alert routes and the live `/ws/alerts` stream."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Query, Response, WebSocket

from vigil.alerts import policies, service
from vigil.alerts.deps import AlertDep, LockedAlertDep, MuteDep, PolicyDep
from vigil.alerts.schemas import (
    AlertRead,
    AlertUpdate,
    CommentIn,
    CommentRead,
    HistoryRead,
    MuteCreate,
    MuteRead,
    PolicyCreate,
    PolicyRead,
    PolicyUpdate,
    RecentMessage,
    Severity,
    SnoozeIn,
    Status,
)
from vigil.core.deps import HubDep, ReadsDep, RedisDep, SessionDep
from vigil.core.pagination import Page, PageDep
from vigil.core.reads import json_rows
from vigil.core.routing import Router
from vigil.core.security import CurrentPrincipal
from vigil.core.types import LenientUtcDatetime
from vigil.core.ws import field_filter

router = Router(prefix="/alerts", tags=["alerts"])
policies_router = Router(prefix="/alert-policies", tags=["alert policies"])
ws_router = Router(tags=["alerts"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown alert"}}
POLICY_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown alert policy"}}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"description": "Duplicate name"}}


@router.get("", response_model=Page[AlertRead])
async def list_alerts(
    reads: ReadsDep,
    page: PageDep,
    status: Status | None = None,
    severity: Severity | None = None,
    source: Annotated[str | None, Query(max_length=50)] = None,
    kind: Annotated[str | None, Query(max_length=100)] = None,
    subject: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[
        LenientUtcDatetime | None, Query(description="Alerts active at or after this time (UTC if no offset)"),
    ] = None,
) -> Response:
    return json_rows(await service.list_alerts(reads, page=page, status=status, severity=severity,
                                               source=source, kind=kind, subject=subject, since=since))


@router.get("/messages/recent", response_model=list[RecentMessage])
async def recent_messages(redis: RedisDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> Any:
    """The latest raw messages seen on the alert topics (`person_reid_alerts`), newest first."""
    return await service.recent_messages(redis, limit=limit)


# Mutes come before /{alert_id}: "mutes" is not an alert id.
@router.post("/mutes", status_code=201, response_model=MuteRead)
async def create_mute(body: MuteCreate, session: SessionDep, principal: CurrentPrincipal) -> Any:
    """Mute alerts matching `match` until `until`: stored and counted, not notified or pushed as new."""
    return await service.create_mute(session, mute_in=body, by=principal.name)


@router.get("/mutes", response_model=Page[MuteRead])
async def list_mutes(session: SessionDep, page: PageDep, active: bool | None = None) -> dict:
    return await service.list_mutes(session, page=page, active=active)


@router.delete("/mutes/{mute_id}", status_code=204, responses={404: {"description": "Unknown mute"}})
async def delete_mute(mute: MuteDep, session: SessionDep) -> Response:
    await service.delete_mute(session, mute=mute)
    return Response(status_code=204)


@router.get("/{alert_id}", response_model=AlertRead, responses=NOT_FOUND)
async def get_alert(alert: AlertDep) -> Any:
    return alert


@router.patch("/{alert_id}", response_model=AlertRead, responses=NOT_FOUND)
async def update_alert(alert_id: uuid.UUID, body: AlertUpdate, session: SessionDep,
                       principal: CurrentPrincipal) -> Any:
    """Set or clear the `assignee`; recorded in the history as `updated`."""
    return await service.update_alert(session, alert_id=alert_id, changes=body.model_dump(exclude_unset=True),
                                      by=principal.name)


@router.post("/{alert_id}/snooze", response_model=AlertRead, responses={**NOT_FOUND, 409: {
    "description": "The alert is resolved"}})
async def snooze(alert_id: uuid.UUID, body: SnoozeIn, session: SessionDep,
                 principal: CurrentPrincipal) -> Any:
    """No reminders or escalations until `until`; the alert stays open and is still counted."""
    return await service.snooze(session, alert_id=alert_id, until=body.until, by=principal.name)


@router.post("/{alert_id}/comments", status_code=201, response_model=CommentRead, responses=NOT_FOUND)
async def comment(alert_id: uuid.UUID, body: CommentIn, session: SessionDep,
                  principal: CurrentPrincipal) -> Any:
    return await service.comment(session, alert_id=alert_id, text=body.text, by=principal.name)


@router.get("/{alert_id}/history", response_model=list[HistoryRead], responses=NOT_FOUND)
async def history(alert: AlertDep, session: SessionDep) -> Any:
    """Created, updated, acknowledged, commented, escalated, reminded, snoozed, resolved: who and when."""
    return await service.history(session, alert=alert)


@router.post("/{alert_id}/acknowledge", response_model=AlertRead, responses=NOT_FOUND)
@router.put("/{alert_id}/acknowledge", response_model=AlertRead, responses=NOT_FOUND,
            operation_id="acknowledge_alert_put")
async def acknowledge(alert: LockedAlertDep, session: SessionDep, principal: CurrentPrincipal) -> Any:
    """Idempotent: acknowledging twice, or a resolved alert, returns it unchanged."""
    return await service.acknowledge(session, alert=alert, by=principal.name)


@router.post("/{alert_id}/resolve", response_model=AlertRead, responses=NOT_FOUND)
@router.put("/{alert_id}/resolve", response_model=AlertRead, responses=NOT_FOUND, operation_id="resolve_alert_put")
async def resolve(alert: LockedAlertDep, session: SessionDep, principal: CurrentPrincipal) -> Any:
    """Idempotent: resolving twice returns the alert unchanged."""
    return await service.resolve(session, alert=alert, by=principal.name)


# --- policies --------------------------------------------------------------------------------


@policies_router.post("", status_code=201, response_model=PolicyRead, responses=CONFLICT)
async def create_policy(body: PolicyCreate, session: SessionDep) -> Any:
    """Unknown exporter ids in `notify` are 422 (`unknown_reference`)."""
    return await policies.create_policy(session, policy_in=body)


@policies_router.get("", response_model=Page[PolicyRead])
async def list_policies(session: SessionDep, page: PageDep, enabled: bool | None = None) -> dict:
    return await policies.list_policies(session, page=page, enabled=enabled)


@policies_router.get("/{policy_id}", response_model=PolicyRead, responses=POLICY_NOT_FOUND)
async def get_policy(policy: PolicyDep) -> Any:
    return policy


@policies_router.patch("/{policy_id}", response_model=PolicyRead, responses={**POLICY_NOT_FOUND, **CONFLICT})
async def update_policy(policy_id: uuid.UUID, body: PolicyUpdate, session: SessionDep) -> Any:
    return await policies.update_policy(session, policy_id=policy_id, policy_in=body)


@policies_router.delete("/{policy_id}", status_code=204, responses=POLICY_NOT_FOUND)
async def delete_policy(policy: PolicyDep, session: SessionDep) -> Response:
    await policies.delete_policy(session, policy=policy)
    return Response(status_code=204)


def alert_matcher(severity: str | None, source: str | None, zone_id: str | None, kind: str | None
                  ) -> Callable[[dict[str, Any]], bool]:
    """Top-level fields of the alert, and `zone_id` inside its `data` (where the sources put it)."""
    top = field_filter({"severity": severity, "source": source, "kind": kind})
    zone = field_filter({"zone_id": zone_id})
    return lambda alert: top(alert) and zone(alert.get("data") or {})


@ws_router.websocket("/alerts")
async def alerts_stream(
    websocket: WebSocket,
    hub: HubDep,
    severity: Severity | None = None,
    source: str | None = None,
    zone_id: str | None = None,
    kind: str | None = None,
) -> None:
    """`alert.created` / `alert.updated` as they happen, narrowed by severity, source, kind, zone_id."""
    await hub.serve(
        websocket, types=("alert.",), match=alert_matcher(severity, source, zone_id, kind)
    )


__all__ = ["policies_router", "router", "ws_router"]
