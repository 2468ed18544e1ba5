"""Tracking routes: observations in, locations out (current, history, live), and the reports."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import BackgroundTasks, Query, WebSocket

from vigil.assets.responses import responses
from vigil.assets.tracking import estimation, service
from vigil.assets.tracking.schemas import DwellRead, IngestResult, LocationRead, ObservationBatch, UtilisationRead
from vigil.core.deps import HubDep, RedisDep, SessionDep, SettingsDep
from vigil.core.pagination import Page, PageDep
from vigil.core.routing import Router
from vigil.core.security import requires
from vigil.core.types import AwareTime
from vigil.core.ws import field_filter

router = Router(tags=["assets"])
ws_router = Router(tags=["assets"])


@router.post("/observations", status_code=202, response_model=IngestResult,
             responses={413: {"description": "More observations than VIGIL_ASSETS_MAX_BATCH"},
                        422: {"description": "A reading out of range or stamped in the future"}})


@requires("ingest")
async def ingest_observations(body: ObservationBatch, session: SessionDep, settings: SettingsDep,
                              redis: RedisDep, background: BackgroundTasks) -> Any:
    """Store a batch of readings (all or nothing); unknown tags and gateways are counted and dropped.

    Estimation follows asynchronously; locations arrive on `/ws/locations`.
    """
    result, touched = await service.ingest_observations(
        session, observations=body.observations, max_batch=settings.assets_max_batch,
        max_future_s=settings.assets_max_future_s)
    # Background tasks run after the response, i.e. after the unit of work committed the readings.
    background.add_task(estimation.schedule, redis, touched, settings.assets_debounce_s)
    return result


@router.get("/assets/{asset_id}/location", response_model=LocationRead, responses=responses(404))
async def get_location(asset_id: uuid.UUID, session: SessionDep, redis: RedisDep) -> Any:
    """The current location estimate; 404 for an unknown asset or one not located yet."""
    return await service.current_location(session, redis=redis, asset_id=asset_id)


@router.get("/assets/{asset_id}/locations", response_model=Page[LocationRead], responses=responses(404))
async def get_locations(asset_id: uuid.UUID, session: SessionDep, page: PageDep,
                        since: AwareTime | None = None, until: AwareTime | None = None) -> dict:
    """Location history, newest first."""
    return await service.location_history(session, asset_id=asset_id, page=page, since=since, until=until)


Since = Annotated[AwareTime | None, Query(description="Range start (default: 24 h before `until`)")]
Until = Annotated[AwareTime | None, Query(description="Range end (default and latest: now)")]


@router.get("/analytics/assets/{asset_id}/dwell", response_model=DwellRead, responses=responses(404, 422))
async def asset_dwell(asset_id: uuid.UUID, session: SessionDep, since: Since = None,
                      until: Until = None) -> Any:
    """Seconds spent inside each geofence (and visits) over the range, from the enter/exit history."""
    return await service.dwell_report(session, asset_id=asset_id, since=since, until=until)


@router.get("/analytics/assets/{asset_id}/utilisation", response_model=UtilisationRead,
            responses=responses(404, 422))


async def asset_utilisation(
    asset_id: uuid.UUID, session: SessionDep, since: Since = None, until: Until = None,
    gap_s: Annotated[float, Query(gt=0, le=86400, description="Longest silence counted as seen")] = 60.0,
    moving_m: Annotated[float, Query(ge=0, le=1000, description="Smallest step counted as movement")] = 1.0,
) -> Any:
    """Share of the range the asset was seen, and share it was moving, from its location history."""
    return await service.utilisation_report(session, asset_id=asset_id, since=since, until=until, gap_s=gap_s,
                                            moving_m=moving_m)


@ws_router.websocket("/locations")
async def locations_stream(websocket: WebSocket, hub: HubDep, site_id: uuid.UUID | None = None,
                           asset_id: uuid.UUID | None = None) -> None:
    """`location.updated` for every asset, optionally narrowed to a site or an asset."""
    match = field_filter({"site_id": str(site_id) if site_id else None,
                          "asset_id": str(asset_id) if asset_id else None})
    await hub.serve(websocket, types=("location.",), match=match)


@ws_router.websocket("/locations/{asset_id}")
async def asset_locations_stream(websocket: WebSocket, hub: HubDep, asset_id: uuid.UUID) -> None:
    """`location.updated` of one asset."""
    await hub.serve(websocket, types=("location.",), match=field_filter({"asset_id": str(asset_id)}))
