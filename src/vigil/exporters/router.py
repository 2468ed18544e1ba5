"""Exporter routes: CRUD, enable/disable, a synchronous test send, and the delivery log."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Response

from vigil.core.deps import BusDep, SessionDep, SettingsDep
from vigil.core.pagination import Page, PageDep
from vigil.core.routing import Router
from vigil.exporters import service
from vigil.exporters.deps import ExporterDep
from vigil.exporters.schemas import (
    DeliveryRead,
    DeliveryStatus,
    ExporterCreate,
    ExporterEnabled,
    ExporterRead,
    ExporterUpdate,
    Kind,
    TestResult,
)
from vigil.exporters.senders import Senders
from vigil.exporters.ssrf import AllowList

router = Router(prefix="/exporters", tags=["exporters"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown exporter"}}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"description": "Duplicate name"}}


@router.post("", status_code=201, response_model=ExporterRead, responses=CONFLICT)
async def create_exporter(body: ExporterCreate, session: SessionDep, settings: SettingsDep) -> Any:
    """Create an exporter; its config is checked for its kind, and internal targets are refused (422)."""
    allow = AllowList.parse(settings.exporter_allowed_hosts)
    return await service.create_exporter(session, exporter_in=body, allow=allow)


@router.get("", response_model=Page[ExporterRead])
async def list_exporters(
    session: SessionDep, page: PageDep, kind: Kind | None = None, enabled: bool | None = None
) -> dict:
    return await service.list_exporters(session, page=page, kind=kind, enabled=enabled)


@router.get("/{exporter_id}", response_model=ExporterRead, responses=NOT_FOUND)
async def get_exporter(exporter: ExporterDep) -> Any:
    return exporter


@router.patch("/{exporter_id}", response_model=ExporterRead, responses={**NOT_FOUND, **CONFLICT})
async def update_exporter(
    exporter_id: uuid.UUID, body: ExporterUpdate, session: SessionDep, settings: SettingsDep
) -> Any:
    """Partial update; masked secrets ('***') sent back keep their stored values."""
    allow = AllowList.parse(settings.exporter_allowed_hosts)
    return await service.update_exporter(session, exporter_id=exporter_id, exporter_in=body, allow=allow)


@router.delete("/{exporter_id}", status_code=204, responses=NOT_FOUND)
async def delete_exporter(exporter: ExporterDep, session: SessionDep) -> Response:
    await service.delete_exporter(session, exporter=exporter)
    return Response(status_code=204)


@router.post("/{exporter_id}/enable", response_model=ExporterEnabled, responses=NOT_FOUND)
async def enable_exporter(exporter_id: uuid.UUID, session: SessionDep, replay: bool = False) -> Any:
    """Enable. Events that arrived while it was disabled were kept as `held` deliveries: `replay=true`
    sends them (in arrival order); without it they are discarded. Either way the response counts them
    (`replayed`, `discarded`). Deliveries queued before the disable are sent in both cases."""
    exporter, replayed, discarded = await service.set_enabled(
        session, exporter_id=exporter_id, enabled=True, replay=replay
    )
    return ExporterEnabled.model_validate(exporter).model_copy(
        update={"replayed": replayed, "discarded": discarded}
    )


@router.post("/{exporter_id}/disable", response_model=ExporterRead, responses=NOT_FOUND)
async def disable_exporter(exporter_id: uuid.UUID, session: SessionDep) -> Any:
    """Disable: nothing is sent; events arriving from now on are kept as `held` deliveries."""
    exporter, _, _ = await service.set_enabled(session, exporter_id=exporter_id, enabled=False)
    return exporter


@router.post("/{exporter_id}/test", response_model=TestResult, responses=NOT_FOUND)
async def test_exporter(
    exporter: ExporterDep, bus: BusDep, settings: SettingsDep
) -> dict:
    """Send a sample payload now and report `{ok, latency_ms, error}` (a failed send is still a 200)."""
    senders = Senders(
        bus=bus,
        timeout_s=settings.exporter_timeout_s,
        allow=AllowList.parse(settings.exporter_allowed_hosts),
        telegram_api_base=settings.telegram_api_base,
    )
    async with senders:
        return await service.test_exporter(exporter=exporter, senders=senders)


@router.get("/{exporter_id}/deliveries", response_model=Page[DeliveryRead], responses=NOT_FOUND)
async def list_deliveries(
    exporter_id: uuid.UUID, session: SessionDep, page: PageDep, status: DeliveryStatus | None = None
) -> dict:
    """Newest first: status (`pending|delivered|failed|held`), attempts, last error, next attempt."""
    return await service.list_deliveries(session, exporter_id=exporter_id, page=page, status=status)


__all__ = ["router"]
