"""Assets routes: sites, gateways, assets, jobs, maintenance, and locations."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request, WebSocket
from fastapi.responses import Response

from vigil.assets import service
from vigil.assets.assets.schemas import AssetCreate, AssetRead, AssetUpdate
from vigil.assets.gateways.schemas import GatewayCreate, GatewayRead, GatewayUpdate
from vigil.assets.geofences.schemas import GeofenceCreate, GeofenceRead, GeofenceStateRead, GeofenceUpdate
from vigil.assets.jobs.schemas import JobCreate, JobRead, JobStatus, JobUpdate
from vigil.assets.maintenance.schemas import MaintenanceCreate, MaintenanceRead, MaintenanceUpdate
from vigil.assets.rules.schemas import RuleCreate, RuleKind, RuleRead, RuleUpdate
from vigil.assets.sites.schemas import SiteCreate, SiteRead, SiteUpdate
from vigil.assets.tracking import estimation
from vigil.assets.tracking.schemas import DwellRead, IngestResult, LocationRead, ObservationBatch, UtilisationRead
from vigil.core.deps import SessionDep, SettingsDep
from vigil.core.pagination import Page, PageDep
from vigil.core.security import requires
from vigil.core.types import AwareTime
from vigil.core.ws import field_filter

router = APIRouter(tags=["assets"])
ws_router = APIRouter(tags=["assets"])


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {404: "Unknown id", 409: "Conflict (duplicate natural key or illegal transition)",
            422: "Validation failed or unknown reference"}
    return {code: {"description": text[code]} for code in codes}


# --- observations ----------------------------------------------------------------------------


@router.post("/observations", status_code=202, response_model=IngestResult,
             responses={413: {"description": "More observations than VIGIL_ASSETS_MAX_BATCH"},
                        422: {"description": "A reading out of range or stamped in the future"}})
@requires("ingest")
async def ingest_observations(body: ObservationBatch, session: SessionDep, settings: SettingsDep,
                              request: Request, background: BackgroundTasks) -> Any:
    """Store a batch of readings (all or nothing); unknown tags and gateways are counted and dropped.

    Estimation follows asynchronously; locations arrive on `/ws/locations`.
    """
    result, touched = await service.ingest_observations(
        session, observations=body.observations, max_batch=settings.assets_max_batch,
        max_future_s=settings.assets_max_future_s)
    # Background tasks run after the response, i.e. after the unit of work committed the readings.
    background.add_task(estimation.schedule, request.app.state.ctx.redis, touched, settings.assets_debounce_s)
    return result


# --- sites -----------------------------------------------------------------------------------


@router.post("/sites", status_code=201, response_model=SiteRead, responses=_responses(409))
async def create_site(body: SiteCreate, session: SessionDep) -> Any:
    return await service.create_site(session, site_in=body)


@router.get("/sites", response_model=Page[SiteRead])
async def list_sites(session: SessionDep, page: PageDep) -> dict:
    return await service.list_sites(session, page=page)


@router.get("/sites/{site_id}", response_model=SiteRead, responses=_responses(404))
async def get_site(site_id: uuid.UUID, session: SessionDep) -> Any:
    return await service.get_site(session, site_id=site_id)


@router.patch("/sites/{site_id}", response_model=SiteRead, responses=_responses(404, 409))
@router.put("/sites/{site_id}", response_model=SiteRead, responses=_responses(404, 409))
async def update_site(site_id: uuid.UUID, body: SiteUpdate, session: SessionDep) -> Any:
    return await service.update_site(session, site_id=site_id, site_in=body)


@router.delete("/sites/{site_id}", status_code=204, responses=_responses(404, 409))
async def delete_site(site_id: uuid.UUID, session: SessionDep) -> Response:
    """409 while gateways, assets, geofences or jobs still belong to the site."""
    await service.delete_site(session, site_id=site_id)
    return Response(status_code=204)


# --- gateways --------------------------------------------------------------------------------


@router.post("/gateways", status_code=201, response_model=GatewayRead, responses=_responses(409, 422))
async def create_gateway(body: GatewayCreate, session: SessionDep) -> Any:
    return await service.create_gateway(session, gateway_in=body)


@router.get("/gateways", response_model=Page[GatewayRead])
async def list_gateways(session: SessionDep, page: PageDep, site_id: uuid.UUID | None = None) -> dict:
    return await service.list_gateways(session, page=page, site_id=site_id)


@router.get("/gateways/{gateway_id}", response_model=GatewayRead, responses=_responses(404))
async def get_gateway(gateway_id: uuid.UUID, session: SessionDep) -> Any:
    return await service.get_gateway(session, gateway_id=gateway_id)


@router.patch("/gateways/{gateway_id}", response_model=GatewayRead, responses=_responses(404, 409, 422))
@router.put("/gateways/{gateway_id}", response_model=GatewayRead, responses=_responses(404, 409, 422))
async def update_gateway(gateway_id: uuid.UUID, body: GatewayUpdate, session: SessionDep) -> Any:
    return await service.update_gateway(session, gateway_id=gateway_id, gateway_in=body)


@router.delete("/gateways/{gateway_id}", status_code=204, responses=_responses(404))
async def delete_gateway(gateway_id: uuid.UUID, session: SessionDep) -> Response:
    await service.delete_gateway(session, gateway_id=gateway_id)
    return Response(status_code=204)


# --- assets ----------------------------------------------------------------------------------


@router.post("/assets", status_code=201, response_model=AssetRead, responses=_responses(409, 422))
async def create_asset(body: AssetCreate, session: SessionDep) -> Any:
    return await service.create_asset(session, asset_in=body)


@router.get("/assets", response_model=Page[AssetRead])
async def list_assets(
    session: SessionDep,
    page: PageDep,
    site_id: uuid.UUID | None = None,
    kind: Annotated[str | None, Query(max_length=100)] = None,
    tag_id: Annotated[str | None, Query(max_length=100)] = None,
    q: Annotated[str | None, Query(max_length=200, description="Name contains (case-insensitive)")] = None,
) -> dict:
    return await service.list_assets(session, page=page, site_id=site_id, kind=kind, tag_id=tag_id, q=q)


@router.get("/assets/{asset_id}", response_model=AssetRead, responses=_responses(404))
async def get_asset(asset_id: uuid.UUID, session: SessionDep) -> Any:
    return await service.get_asset(session, asset_id=asset_id)


@router.patch("/assets/{asset_id}", response_model=AssetRead, responses=_responses(404, 409, 422))
@router.put("/assets/{asset_id}", response_model=AssetRead, responses=_responses(404, 409, 422))
async def update_asset(asset_id: uuid.UUID, body: AssetUpdate, session: SessionDep) -> Any:
    return await service.update_asset(session, asset_id=asset_id, asset_in=body)


@router.delete("/assets/{asset_id}", status_code=204, responses=_responses(404))
async def delete_asset(asset_id: uuid.UUID, session: SessionDep) -> Response:
    await service.delete_asset(session, asset_id=asset_id)
    return Response(status_code=204)


@router.get("/assets/{asset_id}/location", response_model=LocationRead, responses=_responses(404))
async def get_location(asset_id: uuid.UUID, session: SessionDep, request: Request) -> Any:
    """The current location estimate; 404 for an unknown asset or one not located yet."""
    return await service.current_location(session, redis=request.app.state.ctx.redis, asset_id=asset_id)


@router.get("/assets/{asset_id}/locations", response_model=Page[LocationRead], responses=_responses(404))
async def get_locations(asset_id: uuid.UUID, session: SessionDep, page: PageDep,
                        since: AwareTime | None = None, until: AwareTime | None = None) -> dict:
    """Location history, newest first."""
    return await service.location_history(session, asset_id=asset_id, page=page, since=since, until=until)


@router.get("/assets/{asset_id}/geofences", response_model=list[GeofenceStateRead], responses=_responses(404))
async def get_asset_geofences(asset_id: uuid.UUID, session: SessionDep, request: Request) -> Any:
    """Where the asset stands with each fence of its site (inside or not, since when)."""
    return await service.geofence_states(session, redis=request.app.state.ctx.redis, asset_id=asset_id)


# --- geofences -------------------------------------------------------------------------------


@router.post("/geofences", status_code=201, response_model=GeofenceRead, responses=_responses(422))
async def create_geofence(body: GeofenceCreate, session: SessionDep) -> Any:
    """A circle (`center`, `radius_m` > 0) or a simple polygon (`polygon`, >= 3 corners) in a site's frame."""
    return await service.create_geofence(session, fence_in=body)


@router.get("/geofences", response_model=Page[GeofenceRead])
async def list_geofences(session: SessionDep, page: PageDep, site_id: uuid.UUID | None = None) -> dict:
    return await service.list_geofences(session, page=page, site_id=site_id)


@router.get("/geofences/{geofence_id}", response_model=GeofenceRead, responses=_responses(404))
async def get_geofence(geofence_id: uuid.UUID, session: SessionDep) -> Any:
    return await service.get_geofence(session, geofence_id=geofence_id)


@router.patch("/geofences/{geofence_id}", response_model=GeofenceRead, responses=_responses(404, 422))
@router.put("/geofences/{geofence_id}", response_model=GeofenceRead, responses=_responses(404, 422))
async def update_geofence(geofence_id: uuid.UUID, body: GeofenceUpdate, session: SessionDep) -> Any:
    return await service.update_geofence(session, geofence_id=geofence_id, fence_in=body)


@router.delete("/geofences/{geofence_id}", status_code=204, responses=_responses(404))
async def delete_geofence(geofence_id: uuid.UUID, session: SessionDep) -> Response:
    await service.delete_geofence(session, geofence_id=geofence_id)
    return Response(status_code=204)


# --- rules -----------------------------------------------------------------------------------


@router.post("/asset-rules", status_code=201, response_model=RuleRead, responses=_responses(422))
async def create_rule(body: RuleCreate, session: SessionDep) -> Any:
    """`low_battery` {threshold, hysteresis}, `missing` {minutes}, `maintenance_overdue` {grace_minutes};
    for one asset, one site, or (neither) every asset."""
    return await service.create_rule(session, rule_in=body)


@router.get("/asset-rules", response_model=Page[RuleRead])
async def list_rules(session: SessionDep, page: PageDep, kind: RuleKind | None = None,
                     site_id: uuid.UUID | None = None, asset_id: uuid.UUID | None = None) -> dict:
    return await service.list_rules(session, page=page, kind=kind, site_id=site_id, asset_id=asset_id)


@router.get("/asset-rules/{rule_id}", response_model=RuleRead, responses=_responses(404))
async def get_rule(rule_id: uuid.UUID, session: SessionDep) -> Any:
    return await service.get_rule(session, rule_id=rule_id)


@router.patch("/asset-rules/{rule_id}", response_model=RuleRead, responses=_responses(404, 422))
@router.put("/asset-rules/{rule_id}", response_model=RuleRead, responses=_responses(404, 422))
async def update_rule(rule_id: uuid.UUID, body: RuleUpdate, session: SessionDep) -> Any:
    return await service.update_rule(session, rule_id=rule_id, rule_in=body)


@router.delete("/asset-rules/{rule_id}", status_code=204, responses=_responses(404))
async def delete_rule(rule_id: uuid.UUID, session: SessionDep) -> Response:
    await service.delete_rule(session, rule_id=rule_id)
    return Response(status_code=204)


# --- jobs ------------------------------------------------------------------------------------


@router.post("/jobs", status_code=201, response_model=JobRead, responses=_responses(422))
async def create_job(body: JobCreate, session: SessionDep) -> Any:
    return await service.create_job(session, job_in=body)


@router.get("/jobs", response_model=Page[JobRead])
async def list_jobs(session: SessionDep, page: PageDep, status: JobStatus | None = None,
                    asset_id: uuid.UUID | None = None, site_id: uuid.UUID | None = None) -> dict:
    return await service.list_jobs(session, page=page, status=status, asset_id=asset_id, site_id=site_id)


@router.get("/jobs/{job_id}", response_model=JobRead, responses=_responses(404))
async def get_job(job_id: uuid.UUID, session: SessionDep) -> Any:
    return await service.get_job(session, job_id=job_id)


@router.patch("/jobs/{job_id}", response_model=JobRead, responses=_responses(404, 409, 422))
@router.put("/jobs/{job_id}", response_model=JobRead, responses=_responses(404, 409, 422))
async def update_job(job_id: uuid.UUID, body: JobUpdate, session: SessionDep) -> Any:
    """Also moves the status: open <-> in_progress -> done (409 otherwise)."""
    return await service.update_job(session, job_id=job_id, job_in=body)


@router.delete("/jobs/{job_id}", status_code=204, responses=_responses(404))
async def delete_job(job_id: uuid.UUID, session: SessionDep) -> Response:
    await service.delete_job(session, job_id=job_id)
    return Response(status_code=204)


# --- maintenance -----------------------------------------------------------------------------


@router.post("/maintenance", status_code=201, response_model=MaintenanceRead, responses=_responses(422))
async def create_maintenance(body: MaintenanceCreate, session: SessionDep) -> Any:
    return await service.create_maintenance(session, record_in=body)


@router.get("/maintenance", response_model=Page[MaintenanceRead])
async def list_maintenance(session: SessionDep, page: PageDep, asset_id: uuid.UUID | None = None,
                           overdue: bool | None = None, done: bool | None = None) -> dict:
    return await service.list_maintenance(session, page=page, asset_id=asset_id, overdue=overdue, done=done)


@router.get("/maintenance/{record_id}", response_model=MaintenanceRead, responses=_responses(404))
async def get_maintenance(record_id: uuid.UUID, session: SessionDep) -> Any:
    return await service.get_maintenance(session, record_id=record_id)


@router.patch("/maintenance/{record_id}", response_model=MaintenanceRead, responses=_responses(404, 422))
@router.put("/maintenance/{record_id}", response_model=MaintenanceRead, responses=_responses(404, 422))
async def update_maintenance(record_id: uuid.UUID, body: MaintenanceUpdate, session: SessionDep) -> Any:
    """Setting `done_at` resolves the overdue alert, if one was raised."""
    return await service.update_maintenance(session, record_id=record_id, record_in=body)


@router.delete("/maintenance/{record_id}", status_code=204, responses=_responses(404))
async def delete_maintenance(record_id: uuid.UUID, session: SessionDep) -> Response:
    await service.delete_maintenance(session, record_id=record_id)
    return Response(status_code=204)


# --- analytics -------------------------------------------------------------------------------

Since = Annotated[AwareTime | None, Query(description="Range start (default: 24 h before `until`)")]
Until = Annotated[AwareTime | None, Query(description="Range end (default and latest: now)")]


@router.get("/analytics/assets/{asset_id}/dwell", response_model=DwellRead, responses=_responses(404, 422))
async def asset_dwell(asset_id: uuid.UUID, session: SessionDep, since: Since = None,
                      until: Until = None) -> Any:
    """Seconds spent inside each geofence (and visits) over the range, from the enter/exit history."""
    return await service.dwell_report(session, asset_id=asset_id, since=since, until=until)


@router.get("/analytics/assets/{asset_id}/utilisation", response_model=UtilisationRead,
            responses=_responses(404, 422))
async def asset_utilisation(
    asset_id: uuid.UUID, session: SessionDep, since: Since = None, until: Until = None,
    gap_s: Annotated[float, Query(gt=0, le=86400, description="Longest silence counted as seen")] = 60.0,
    moving_m: Annotated[float, Query(ge=0, le=1000, description="Smallest step counted as movement")] = 1.0,
) -> Any:
    """Share of the range the asset was seen, and share it was moving, from its location history."""
    return await service.utilisation_report(session, asset_id=asset_id, since=since, until=until, gap_s=gap_s,
                                            moving_m=moving_m)


# --- live ------------------------------------------------------------------------------------


@ws_router.websocket("/locations")
async def locations_stream(websocket: WebSocket, site_id: uuid.UUID | None = None,
                           asset_id: uuid.UUID | None = None) -> None:
    """`location.updated` for every asset, optionally narrowed to a site or an asset."""
    match = field_filter({"site_id": str(site_id) if site_id else None,
                          "asset_id": str(asset_id) if asset_id else None})
    await websocket.app.state.ctx.hub.serve(websocket, types=("location.",), match=match)


@ws_router.websocket("/locations/{asset_id}")
async def asset_locations_stream(websocket: WebSocket, asset_id: uuid.UUID) -> None:
    """`location.updated` of one asset."""
    await websocket.app.state.ctx.hub.serve(websocket, types=("location.",),
                                            match=field_filter({"asset_id": str(asset_id)}))


__all__ = ["router", "ws_router"]
