"""Scenario routes and the live `/ws/scenarios` stream."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Query, Response, WebSocket

from vigil.core.deps import HubDep, SessionDep, SettingsDep
from vigil.core.pagination import Page, PageDep
from vigil.core.routing import Router
from vigil.core.security import CurrentPrincipal
from vigil.core.ws import field_filter
from vigil.scenarios import service
from vigil.scenarios.schemas import (
    Detector,
    PredictionPage,
    RunRead,
    ScenarioCreate,
    ScenarioRead,
    Status,
    StatusChange,
    TransitionRead,
)
from vigil.scenarios.sources import SourcePolicy

router = Router(prefix="/scenarios", tags=["scenarios"])
ws_router = Router(tags=["scenarios"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown scenario"}}


@router.post("", status_code=201, response_model=ScenarioRead)
async def create_scenario(body: ScenarioCreate, session: SessionDep, principal: CurrentPrincipal,
                          settings: SettingsDep) -> Any:
    """A new scenario starts in `init_startup`; move it to `init_startup_processing` to run it.

    `source`: rtsp, rtsps, http or https (internal addresses refused unless in VIGIL_SCENARIO_ALLOWED_HOSTS),
    or a file (`file://` or a path) under VIGIL_MEDIA_ROOT; anything else is 422."""
    return await service.create_scenario(session, scenario_in=body, by=principal.name,
                                         sources=SourcePolicy.from_settings(settings))


@router.get("", response_model=Page[ScenarioRead])
async def list_scenarios(session: SessionDep, page: PageDep, status: Status | None = None) -> dict:
    return await service.list_scenarios(session, page=page, status=status)


@router.get("/{scenario_id}", response_model=ScenarioRead, responses=NOT_FOUND)
async def get_scenario(scenario_id: uuid.UUID, session: SessionDep) -> Any:
    """The scenario with its latest run's progress (frames, fps, attempt)."""
    return await service.get_scenario(session, scenario_id=scenario_id)


@router.delete("/{scenario_id}", status_code=204, responses=NOT_FOUND)
async def delete_scenario(scenario_id: uuid.UUID, session: SessionDep) -> Response:
    await service.delete_scenario(session, scenario_id=scenario_id)
    return Response(status_code=204)


@router.post("/{scenario_id}/status", response_model=ScenarioRead,
             responses={**NOT_FOUND, 409: {"description": "The state machine forbids this move, or a concurrent "
                                                          "change won (the body names the allowed moves)"}})
async def change_status(scenario_id: uuid.UUID, body: StatusChange, session: SessionDep,
                        principal: CurrentPrincipal) -> Any:
    return await service.change_status(session, scenario_id=scenario_id, to=body.status, reason=body.reason,
                                       by=principal.name, expected_version=body.version)


@router.get("/{scenario_id}/history", response_model=Page[TransitionRead], responses=NOT_FOUND)
async def history(scenario_id: uuid.UUID, session: SessionDep, page: PageDep) -> dict:
    """Every state change, oldest first."""
    return await service.list_history(session, scenario_id=scenario_id, page=page)


@router.get("/{scenario_id}/runs", response_model=Page[RunRead], responses=NOT_FOUND)
async def runs(scenario_id: uuid.UUID, session: SessionDep, page: PageDep) -> dict:
    """Every run (attempt) of the scenario, oldest first."""
    return await service.list_runs(session, scenario_id=scenario_id, page=page)


@router.get("/{scenario_id}/predictions", response_model=PredictionPage, responses=NOT_FOUND)
async def predictions(
    scenario_id: uuid.UUID,
    session: SessionDep,
    page: PageDep,
    run_id: Annotated[uuid.UUID | None, Query(description="A run of this scenario; default the latest")] = None,
    class_: Annotated[Detector | None, Query(alias="class")] = None,
    min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
) -> dict:
    """Detections `{frame, ts, class, confidence, bbox}` in frame order, and a summary by class."""
    return await service.list_predictions(session, scenario_id=scenario_id, page=page, run_id=run_id, label=class_,
                                          min_confidence=min_confidence)


@ws_router.websocket("/scenarios")
async def scenarios_stream(websocket: WebSocket, hub: HubDep, id: uuid.UUID | None = None,
                           status: Status | None = None) -> None:
    """`scenario.updated` (and `scenario.progress`, `scenario.deleted`) as they happen; narrow with id, status."""
    await hub.serve(
        websocket, types=("scenario.",), match=field_filter({"id": str(id) if id else None, "status": status}),
    )


__all__ = ["router", "ws_router"]
