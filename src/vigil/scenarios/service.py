"""Scenario rules, the API side: create, list, delete, move a scenario, read its runs and predictions.

This is what the router and other domains call (`vigil.scenarios.service` is the domain's entry
point). The table of statuses and moves is `states`; the runner side (claims, heartbeats, results,
the stale-run sweep, retries) is `runs`, which changes states through `move_scenario` here as well.

Every state change goes through `move_scenario`: it checks the table, writes `WHERE version = <read
version>` (optimistic concurrency: of two concurrent moves one wins, the other gets 409), records the
history row and announces `scenario.updated` through the outbox. Work for runners leaves through the
outbox as well, so a broker outage delays a dispatch but never loses it.
"""

from __future__ import annotations

import uuid
from typing import Any

from loguru import logger
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from vigil.alerts import service as alerts
from vigil.core.context import AppContext
from vigil.core.db import utcnow
from vigil.core.errors import Conflict, NotFound, ValidationFailed
from vigil.core.messaging import emit, enqueue
from vigil.core.pagination import PageParams, paginate
from vigil.core.retention import RetentionPolicy, delete_chunk
from vigil.scenarios.models import Prediction, Scenario, ScenarioRun, ScenarioTransition
from vigil.scenarios.schemas import Job, ScenarioCreate, ScenarioRead, mask_source
from vigil.scenarios.sources import SourcePolicy, SourceRefused, vet_source
from vigil.scenarios.states import (
    LIVE_RUN_STATUSES,
    TRANSITIONS,
    IllegalTransition,
    allowed_moves,
    check_transition,
    short_error,
)

JOBS_TOPIC = "scenarios"


class ScenarioNotFound(NotFound):
    title = "Scenario not found"


class ConcurrentUpdate(Conflict):
    title = "Scenario changed concurrently"


# --------------------------------------------------------------------------------------------
# The write path of the state machine (the API side here, the runner side in `runs`)
# --------------------------------------------------------------------------------------------


def announce(session: AsyncSession, scenario: Scenario, type_: str = "scenario.updated") -> None:
    """Tell `/ws/scenarios` (and every other `vigil.events` reader) about the scenario as it is now."""
    emit(session, type_, ScenarioRead.model_validate(scenario).model_dump(mode="json"), key=str(scenario.id))


async def find_scenario(session: AsyncSession, scenario_id: uuid.UUID) -> Scenario | None:
    """The scenario with its latest run, fresh from the database, or None (for callers to whom gone is no error)."""
    stmt = (select(Scenario).options(joinedload(Scenario.latest_run)).where(Scenario.id == scenario_id)
            .execution_options(populate_existing=True))
    return await session.scalar(stmt)


async def get_scenario(session: AsyncSession, *, scenario_id: uuid.UUID) -> Scenario:
    """The scenario with its latest run's progress, or 404: what every API read and move starts from."""
    scenario = await find_scenario(session, scenario_id)
    if scenario is None:
        raise ScenarioNotFound(f"Scenario {scenario_id} does not exist.")
    return scenario


async def _write(session: AsyncSession, scenario: Scenario, **values: Any) -> int:
    """Update the scenario only if nobody changed it since we read it; returns the new version."""
    new_version = await session.scalar(
        update(Scenario)
        .where(Scenario.id == scenario.id, Scenario.version == scenario.version)
        .values(version=Scenario.version + 1, updated_at=utcnow(), **values)
        .returning(Scenario.version)
        .execution_options(synchronize_session=False)
    )
    if new_version is None:
        raise ConcurrentUpdate(
            f"Scenario {scenario.id} changed while this change was being made (it is no longer at version "
            f"{scenario.version}); read it again and retry.",
        )
    return new_version


async def move_scenario(session: AsyncSession, scenario: Scenario, to: str, *, reason: str | None,
                        by: str | None, **values: Any) -> Scenario:
    """The one place a status changes: table check, versioned write, history row, announcement."""
    check_transition(scenario.status, to)
    before = scenario.status
    version = await _write(session, scenario, status=to, **values)
    session.add(ScenarioTransition(scenario_id=scenario.id, from_status=before, to_status=to, version=version,
                                   reason=reason, by=by, at=utcnow()))
    await session.flush()
    moved = await get_scenario(session, scenario_id=scenario.id)
    announce(session, moved)
    logger.info("scenario {} {} -> {} (v{}) by {}: {}", scenario.id, before, to, version, by, reason or "-")
    return moved


# --------------------------------------------------------------------------------------------
# API operations
# --------------------------------------------------------------------------------------------


async def create_scenario(session: AsyncSession, *, scenario_in: ScenarioCreate, by: str | None,
                          sources: SourcePolicy) -> Scenario:
    """Store a new scenario in `init_startup`; its source must pass the source policy (422 naming `source`)."""
    try:
        if scenario_in.source is not None:  # None: the runner's own default source, set by its operator
            await vet_source(scenario_in.source, sources)
    except SourceRefused as exc:
        raise ValidationFailed(f"source: {exc}.", errors=[
            {"loc": ["body", "source"], "msg": str(exc), "type": "source_refused"}]) from None
    scenario = Scenario(source=scenario_in.source, params=scenario_in.params.model_dump(mode="json"),
                        status="init_startup", version=1)
    session.add(scenario)
    await session.flush()
    session.add(ScenarioTransition(scenario_id=scenario.id, from_status=None, to_status="init_startup", version=1,
                                   reason="created", by=by, at=utcnow()))
    await session.flush()
    created = await get_scenario(session, scenario_id=scenario.id)
    announce(session, created)
    logger.info("scenario {} created for {}", created.id, mask_source(created.source))
    return created


async def list_scenarios(session: AsyncSession, *, page: PageParams, status: str | None = None) -> dict:
    """A page of scenarios, newest first, optionally of one status, each with its latest run's progress."""
    stmt = select(Scenario).options(joinedload(Scenario.latest_run))
    if status is not None:
        stmt = stmt.where(Scenario.status == status)
    return await paginate(session, stmt.order_by(Scenario.created_at.desc(), Scenario.id), page)


async def delete_scenario(session: AsyncSession, *, scenario_id: uuid.UUID) -> None:
    """Delete a scenario with its runs, history and predictions; a runner on it stops at its next batch."""
    scenario = await get_scenario(session, scenario_id=scenario_id)
    data = ScenarioRead.model_validate(scenario).model_dump(mode="json")
    await session.execute(delete(Scenario).where(Scenario.id == scenario_id))
    emit(session, "scenario.deleted", data, key=str(scenario_id))
    logger.info("scenario {} deleted", scenario_id)


async def change_status(session: AsyncSession, *, scenario_id: uuid.UUID, to: str, reason: str | None = None,
                        by: str | None = None, expected_version: int | None = None) -> Scenario:
    """A move the API asked for, with what it sets in motion: dispatch a run, stop it, or cancel it."""
    scenario = await get_scenario(session, scenario_id=scenario_id)
    if expected_version is not None and scenario.version != expected_version:
        raise ConcurrentUpdate(f"Scenario {scenario_id} is at version {scenario.version}, not {expected_version}.",
                               current_version=scenario.version)
    check_transition(scenario.status, to)
    run = scenario.latest_run
    if to == "init_startup_processing":
        return await dispatch_run(session, scenario, attempt=1, reason=reason or "dispatched", by=by)
    if to in ("failed", "init_startup", "inactive") and run is not None and run.status in LIVE_RUN_STATUSES:
        # The runner sees the cancelled run at its next batch and stops without touching the scenario.
        run.status, run.finished_at = "cancelled", utcnow()
    values: dict[str, Any] = {}
    if to == "failed":
        values["last_error"] = short_error(reason or "marked failed")
    if to == "init_startup":
        values["last_error"] = None
        if scenario.status == "failed":
            await alerts.resolve_active(session, source="scenario", kind="scenario_failed", subject=str(scenario.id),
                                        by=by or "auto")
    moved = await move_scenario(session, scenario, to, reason=reason, by=by, **values)
    if to == "in_shutdown_processing" and (run is None or run.status not in LIVE_RUN_STATUSES):
        # Nothing is running to acknowledge the stop, so the shutdown completes now.
        moved = await move_scenario(session, moved, "inactive", reason="no run in progress", by="system")
    return moved


async def dispatch_run(session: AsyncSession, scenario: Scenario, *, attempt: int, reason: str,
                       by: str | None) -> Scenario:
    """Move to init_startup_processing (if not already there) with a new run, and queue its job."""
    run_id = uuid.uuid4()
    # The run exists before the move, so the one `scenario.updated` the move announces already shows it.
    session.add(ScenarioRun(id=run_id, scenario_id=scenario.id, attempt=attempt, status="queued"))
    await session.flush()
    if scenario.status in ("init_startup_processing", "active"):
        await _write(session, scenario, current_run_id=run_id)  # a retry: same state, next attempt
        dispatched = await get_scenario(session, scenario_id=scenario.id)
        announce(session, dispatched)
    else:
        dispatched = await move_scenario(session, scenario, "init_startup_processing", reason=reason, by=by,
                                         current_run_id=run_id, last_error=None)
    job = Job(scenario_id=scenario.id, run_id=run_id, source=dispatched.source, params=dispatched.params,
              attempt=attempt)
    enqueue(session, JOBS_TOPIC, job.model_dump(mode="json"), key=str(scenario.id))
    logger.info("scenario {} dispatched run {} (attempt {})", scenario.id, run_id, attempt)
    return dispatched


async def list_history(session: AsyncSession, *, scenario_id: uuid.UUID, page: PageParams) -> dict:
    """The scenario's state changes, oldest first, with why and by whom (404 for an unknown scenario)."""
    await get_scenario(session, scenario_id=scenario_id)
    stmt = select(ScenarioTransition).where(ScenarioTransition.scenario_id == scenario_id)
    return await paginate(session, stmt.order_by(ScenarioTransition.id), page)


async def list_runs(session: AsyncSession, *, scenario_id: uuid.UUID, page: PageParams) -> dict:
    """Every run (attempt) of the scenario, oldest first, so a retry's history stays visible (404 if unknown)."""
    await get_scenario(session, scenario_id=scenario_id)
    stmt = select(ScenarioRun).where(ScenarioRun.scenario_id == scenario_id)
    return await paginate(session, stmt.order_by(ScenarioRun.created_at, ScenarioRun.attempt), page)


async def list_predictions(session: AsyncSession, *, scenario_id: uuid.UUID, page: PageParams,
                           run_id: uuid.UUID | None = None, label: str | None = None,
                           min_confidence: float | None = None) -> dict:
    """One run's detections (the current run unless `run_id` names another), in frame order, with a summary."""
    scenario = await get_scenario(session, scenario_id=scenario_id)
    run_id = run_id or scenario.current_run_id
    filters = [Prediction.scenario_id == scenario_id, Prediction.run_id == run_id]
    if label is not None:
        filters.append(Prediction.label == label)
    if min_confidence is not None:
        filters.append(Prediction.confidence >= min_confidence)
    result = await paginate(session, select(Prediction).where(*filters).order_by(Prediction.frame, Prediction.id),
                            page)
    summary = await session.execute(
        select(Prediction.label, func.count(), func.count(func.distinct(Prediction.frame)),
               func.avg(Prediction.confidence), func.max(Prediction.confidence))
        .where(*filters).group_by(Prediction.label).order_by(func.count().desc(), Prediction.label)
    )
    return {
        "scenario_id": scenario_id,
        "run_id": run_id,
        "predictions": result["items"],
        "total": result["total"],
        "limit": result["limit"],
        "offset": result["offset"],
        "summary": [{"class": label_, "count": n, "frames": frames, "avg_confidence": float(avg),
                     "max_confidence": float(top)} for label_, n, frames, avg, top in summary.all()],
    }


# --- retention (run by core.retention; listed in registry.retention_policies) ----------------


async def purge_predictions(ctx: AppContext, *, cutoff: Any, limit: int) -> int:
    """Delete one chunk of predictions stored before `cutoff` (scenarios and runs are kept)."""
    return len(await delete_chunk(ctx, Prediction.id, Prediction.created_at < cutoff, limit=limit))


def retention_policies() -> list[RetentionPolicy]:
    """What the scenarios domain lets retention purge: predictions, which grow with every frame."""
    return [RetentionPolicy("scenario_predictions", "retention_predictions_days", purge_predictions)]


__all__ = [
    "JOBS_TOPIC",
    "TRANSITIONS",
    "ConcurrentUpdate",
    "IllegalTransition",
    "ScenarioNotFound",
    "allowed_moves",
    "announce",
    "change_status",
    "check_transition",
    "create_scenario",
    "delete_scenario",
    "dispatch_run",
    "find_scenario",
    "get_scenario",
    "list_history",
    "list_predictions",
    "list_runs",
    "list_scenarios",
    "move_scenario",
    "purge_predictions",
    "retention_policies",
]
