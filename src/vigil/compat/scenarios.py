"""The video-analytics orchestrator's routes: `/scenario/` create, `/scenario/{id}/` move and read,
`/prediction/{id}/`. The state machine is Vigil's: an illegal move is 409.

A scenario created without `source` runs on the runner's own default (`vigil runner --source PATH`),
as the seed's workers were started with a video path on their command line.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vigil.compat import TAG, SeedPage, to_domain
from vigil.core.deps import SessionDep, SettingsDep
from vigil.core.routing import Router
from vigil.core.security import CurrentPrincipal
from vigil.scenarios import service as scenarios
from vigil.scenarios.schemas import MAX_SOURCE_LENGTH, ScenarioCreate, ScenarioParams, Status
from vigil.scenarios.sources import SourcePolicy

router = Router(tags=[TAG])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown scenario"}}


class SeedScenarioCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["init_startup"] = Field("init_startup", description="A scenario always starts here.")
    source: Annotated[str | None, Field(max_length=MAX_SOURCE_LENGTH + 100)] = None
    params: ScenarioParams | None = None


class SeedCreated(BaseModel):
    scenario_id: uuid.UUID


class SeedStatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status


class SeedUpdated(BaseModel):
    status: Literal["updated"]
    scenario_id: uuid.UUID


class SeedScenario(BaseModel):
    id: uuid.UUID
    status: Status


class SeedPredictions(BaseModel):
    scenario_id: uuid.UUID
    predictions: dict[str, list[dict[str, Any]]] = Field(
        description="Detections by frame number: `{\"<frame>\": [{\"ts\", \"class\", \"confidence\", \"bbox\"}]}`.")


@router.post("/scenario/", status_code=201, response_model=SeedCreated)
async def create_scenario(body: SeedScenarioCreate, session: SessionDep, principal: CurrentPrincipal,
                          settings: SettingsDep) -> Any:
    scenario_in = to_domain(ScenarioCreate, body.model_dump(exclude={"status"}, exclude_none=True))
    created = await scenarios.create_scenario(session, scenario_in=scenario_in, by=principal.name,
                                              sources=SourcePolicy.from_settings(settings))
    return {"scenario_id": created.id}


@router.post("/scenario/{scenario_id}/", response_model=SeedUpdated,
             responses={**NOT_FOUND, 409: {"description": "The state machine forbids this move"}})
async def change_status(scenario_id: uuid.UUID, body: SeedStatusChange, session: SessionDep,
                        principal: CurrentPrincipal) -> Any:
    await scenarios.change_status(session, scenario_id=scenario_id, to=body.status, by=principal.name)
    return {"status": "updated", "scenario_id": scenario_id}


@router.get("/scenario/{scenario_id}/", response_model=SeedScenario, responses=NOT_FOUND)
async def get_scenario(scenario_id: uuid.UUID, session: SessionDep) -> Any:
    return await scenarios.get_scenario(session, scenario_id=scenario_id)


@router.get("/prediction/{scenario_id}/", response_model=SeedPredictions, responses=NOT_FOUND)
async def predictions(scenario_id: uuid.UUID, session: SessionDep, page: SeedPage) -> Any:
    """The latest run's detections, grouped by frame (a page of them: `limit`, `offset`)."""
    found = await scenarios.list_predictions(session, scenario_id=scenario_id, page=page)
    by_frame: dict[str, list[dict[str, Any]]] = {}
    for p in found["predictions"]:
        by_frame.setdefault(str(p.frame), []).append(
            {"ts": p.ts, "class": p.label, "confidence": p.confidence, "bbox": list(p.bbox)})
    return {"scenario_id": scenario_id, "predictions": by_frame}


__all__ = ["router"]
