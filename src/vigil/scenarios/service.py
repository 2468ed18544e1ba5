"""Scenario rules: the state machine (a table, enforced here only), dispatch, run bookkeeping and retries.

Every state change goes through `_move`: it checks the table, writes `WHERE version = <read version>`
(optimistic concurrency: of two concurrent moves one wins, the other gets 409), records the history row
and announces `scenario.updated` through the outbox. Work for runners leaves through the outbox as well,
so a broker outage delays a dispatch but never loses it.

The runner-side functions (`claim_run`, `record_batch`, `finish_run`, `fail_run`, `release_run`) and the
retry consumer's `handle_run_failure` take the same session-per-unit-of-work and re-check that the run
they act on is still the scenario's current one, so stale or duplicate messages change nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from loguru import logger
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from vigil.alerts import service as alerts
from vigil.core.db import utcnow
from vigil.core.errors import Conflict, InvalidState, NotFound, ValidationFailed
from vigil.core.messaging import emit, enqueue
from vigil.core.pagination import PageParams, paginate
from vigil.scenarios.models import STATUSES, Prediction, Scenario, ScenarioRun, ScenarioTransition
from vigil.scenarios.schemas import (
    Job,
    RunFailure,
    RunRead,
    ScenarioCreate,
    ScenarioRead,
    mask_source,
)
from vigil.scenarios.sources import SourcePolicy, SourceRefused, vet_source

JOBS_TOPIC = "scenarios"
RETRY_TOPIC = "retry_topic"
RUNNERS_GROUP = "runners_group"

# The state machine, as data. API.md: init_startup -> init_startup_processing -> active ->
# in_shutdown_processing -> inactive; any state -> failed; failed|inactive -> init_startup.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "init_startup": ("init_startup_processing", "failed"),
    "init_startup_processing": ("active", "failed"),
    "active": ("in_shutdown_processing", "failed"),
    "in_shutdown_processing": ("inactive", "failed"),
    "inactive": ("init_startup", "failed"),
    "failed": ("init_startup",),
}
if set(TRANSITIONS) != set(STATUSES):
    raise AssertionError()

# States in which a run may be working on the scenario.
LIVE_STATUSES = frozenset({"init_startup_processing", "active", "in_shutdown_processing"})
LIVE_RUN_STATUSES = frozenset({"queued", "running"})
TERMINAL_RUN_STATUSES = frozenset({"completed", "failed", "stopped", "cancelled"})
MAX_ERROR_LENGTH = 2000


class ScenarioNotFound(NotFound):
    title = "Scenario not found"


class IllegalTransition(InvalidState):
    title = "Illegal scenario transition"


class ConcurrentUpdate(Conflict):
    title = "Scenario changed concurrently"


# --------------------------------------------------------------------------------------------
# The state machine
# --------------------------------------------------------------------------------------------


def allowed_moves(status: str) -> list[str]:
    return list(TRANSITIONS.get(status, ()))


def check_transition(current: str, target: str) -> None:
    """Raise IllegalTransition (409, naming the allowed moves) unless the table allows current -> target."""
    allowed = allowed_moves(current)
    if target not in allowed:
        raise IllegalTransition(
            f"A scenario cannot move from {current} to {target}; from {current} it can move to: "
            f"{', '.join(allowed) or 'nothing'}.",
            current=current, requested=target, allowed=allowed,
        )


def _short(error: str) -> str:
    return error if len(error) <= MAX_ERROR_LENGTH else error[: MAX_ERROR_LENGTH - 3] + "..."


def announce(session: AsyncSession, scenario: Scenario, type_: str = "scenario.updated") -> None:
    """Tell `/ws/scenarios` (and every other `vigil.events` reader) about the scenario as it is now."""
    emit(session, type_, ScenarioRead.model_validate(scenario).model_dump(mode="json"), key=str(scenario.id))


async def _load(session: AsyncSession, scenario_id: uuid.UUID) -> Scenario | None:
    stmt = (select(Scenario).options(joinedload(Scenario.latest_run)).where(Scenario.id == scenario_id)
            .execution_options(populate_existing=True))
    return await session.scalar(stmt)


async def get_scenario(session: AsyncSession, *, scenario_id: uuid.UUID) -> Scenario:
    scenario = await _load(session, scenario_id)
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


async def _move(session: AsyncSession, scenario: Scenario, to: str, *, reason: str | None, by: str | None,
                **values: Any) -> Scenario:
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
    """Newest first."""
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
    """A requested move, with what it sets in motion (dispatch, stop, cancel)."""
    scenario = await get_scenario(session, scenario_id=scenario_id)
    if expected_version is not None and scenario.version != expected_version:
        raise ConcurrentUpdate(f"Scenario {scenario_id} is at version {scenario.version}, not {expected_version}.",
                               current_version=scenario.version)
    check_transition(scenario.status, to)
    run = scenario.latest_run
    if to == "init_startup_processing":
        return await _dispatch(session, scenario, attempt=1, reason=reason or "dispatched", by=by)
    if to in ("failed", "init_startup", "inactive") and run is not None and run.status in LIVE_RUN_STATUSES:
        # The runner sees the cancelled run at its next batch and stops without touching the scenario.
        run.status, run.finished_at = "cancelled", utcnow()
    values: dict[str, Any] = {}
    if to == "failed":
        values["last_error"] = _short(reason or "marked failed")
    if to == "init_startup":
        values["last_error"] = None
        if scenario.status == "failed":
            await alerts.resolve_active(session, source="scenario", kind="scenario_failed", subject=str(scenario.id),
                                        by=by or "auto")
    moved = await _move(session, scenario, to, reason=reason, by=by, **values)
    if to == "in_shutdown_processing" and (run is None or run.status not in LIVE_RUN_STATUSES):
        # Nothing is running to acknowledge the stop, so the shutdown completes now.
        moved = await _move(session, moved, "inactive", reason="no run in progress", by="system")
    return moved


async def _dispatch(session: AsyncSession, scenario: Scenario, *, attempt: int, reason: str,
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
        dispatched = await _move(session, scenario, "init_startup_processing", reason=reason, by=by,
                                 current_run_id=run_id, last_error=None)
    job = Job(scenario_id=scenario.id, run_id=run_id, source=dispatched.source, params=dispatched.params,
              attempt=attempt)
    enqueue(session, JOBS_TOPIC, job.model_dump(mode="json"), key=str(scenario.id))
    logger.info("scenario {} dispatched run {} (attempt {})", scenario.id, run_id, attempt)
    return dispatched


async def list_history(session: AsyncSession, *, scenario_id: uuid.UUID, page: PageParams) -> dict:
    await get_scenario(session, scenario_id=scenario_id)
    stmt = select(ScenarioTransition).where(ScenarioTransition.scenario_id == scenario_id)
    return await paginate(session, stmt.order_by(ScenarioTransition.id), page)


async def list_runs(session: AsyncSession, *, scenario_id: uuid.UUID, page: PageParams) -> dict:
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


# --------------------------------------------------------------------------------------------
# Runner side
# --------------------------------------------------------------------------------------------

Verdict = Literal["run", "skip", "busy"]


@dataclass(frozen=True, slots=True)
class Claim:
    verdict: Verdict
    reason: str = ""


async def _locked_run(session: AsyncSession, run_id: uuid.UUID) -> ScenarioRun | None:
    return await session.scalar(select(ScenarioRun).where(ScenarioRun.id == run_id).with_for_update()
                                .execution_options(populate_existing=True))


def _superseded(scenario: Scenario | None, run: ScenarioRun) -> bool:
    return scenario is None or scenario.current_run_id != run.id or scenario.status not in LIVE_STATUSES


def _end_run(run: ScenarioRun, status: str, *, error: str | None = None) -> None:
    run.status, run.finished_at = status, utcnow()
    run.heartbeat_at = None
    if error is not None:
        run.error = _short(error)


async def claim_run(session: AsyncSession, *, job: Job, runner: str, stale_after_s: float) -> Claim:
    """Decide what a runner does with a job: run it, skip it (done, stale, gone) or wait (someone else has it).

    A run another runner holds is taken over only when its heartbeat is older than `stale_after_s`:
    that runner died, and its uncommitted message came to us. Predictions of a taken-over run are
    cleared first, so each run's results are stored once.
    """
    run = await _locked_run(session, job.run_id)
    if run is None:
        return Claim("skip", "unknown run (the scenario was deleted)")
    if run.status in TERMINAL_RUN_STATUSES:
        return Claim("skip", f"run already {run.status}")
    scenario = await _load(session, run.scenario_id)
    if _superseded(scenario, run):
        _end_run(run, "cancelled")
        return Claim("skip", "superseded by a later state change")
    if scenario is None:
        raise AssertionError()
    if scenario.status == "in_shutdown_processing":
        _end_run(run, "stopped")
        await session.flush()
        await _move(session, scenario, "inactive", reason="stopped before the run started", by=f"runner:{runner}")
        return Claim("skip", "stopped before it started")
    now = utcnow()
    if (run.status == "running" and run.runner != runner and run.heartbeat_at is not None
            and now - run.heartbeat_at < timedelta(seconds=stale_after_s)):
        return Claim("busy", f"held by {run.runner}")
    taken_over = run.runner if run.status == "running" else None
    await session.execute(delete(Prediction).where(Prediction.run_id == run.id))
    run.status, run.runner, run.heartbeat_at = "running", runner, now
    run.started_at = now
    run.frames_read = run.frames_processed = run.predictions = 0
    run.fps, run.error = None, None
    await session.flush()
    announce(session, await get_scenario(session, scenario_id=scenario.id))
    if taken_over:
        logger.warning("scenario {} run {} taken over from {} (heartbeat stale)", scenario.id, run.id, taken_over)
    return Claim("run", f"taken over from {taken_over}" if taken_over else "")


async def mark_active(session: AsyncSession, *, run_id: uuid.UUID, runner: str) -> bool:
    """The source opened and decodes: the scenario is active. False if the run is no longer ours."""
    run = await _locked_run(session, run_id)
    if run is None or run.status != "running" or run.runner != runner:
        return False
    scenario = await _load(session, run.scenario_id)
    if _superseded(scenario, run):
        return False
    if scenario is None:
        raise AssertionError()
    run.heartbeat_at = utcnow()
    if scenario.status == "init_startup_processing":
        await _move(session, scenario, "active", reason=f"run {run.id} attempt {run.attempt} started",
                    by=f"runner:{runner}")
    return True


BatchVerdict = Literal["continue", "stop", "abort"]


async def record_batch(session: AsyncSession, *, run_id: uuid.UUID, runner: str, predictions: list[dict[str, Any]],
                       frames_read: int, frames_processed: int, fps: float | None) -> BatchVerdict:
    """Store a batch of detections and the run's progress; say whether to go on, stop (shutdown) or abort."""
    run = await _locked_run(session, run_id)
    if run is None or run.status != "running" or run.runner != runner:
        return "abort"  # deleted, cancelled, or taken over by another runner
    scenario = await _load(session, run.scenario_id)
    if _superseded(scenario, run):
        _end_run(run, "cancelled")
        return "abort"
    if scenario is None:
        raise AssertionError()
    if predictions:
        await session.execute(insert(Prediction), [
            {"scenario_id": scenario.id, "run_id": run.id, "frame": p["frame"], "ts": p["ts"], "label": p["class"],
             "confidence": p["confidence"], "bbox": p["bbox"], "created_at": utcnow()} for p in predictions
        ])
    run.frames_read, run.frames_processed, run.fps = frames_read, frames_processed, fps
    run.predictions += len(predictions)
    run.heartbeat_at = utcnow()
    await session.flush()
    emit(session, "scenario.progress", {"id": str(scenario.id), "status": scenario.status,
                                        "run": RunRead.model_validate(run).model_dump(mode="json")},
         key=str(scenario.id))
    return "stop" if scenario.status == "in_shutdown_processing" else "continue"


async def _lock_scenario_latest(session: AsyncSession, scenario_id: uuid.UUID) -> Scenario | None:
    """Take the scenario's row lock and its latest committed state (bumps the version).

    Ending a run bumps the version so that a concurrent stop request, which decided from the run's
    old state, loses its versioned write and is retried instead of waiting for a runner that left.
    """
    bumped = await session.scalar(update(Scenario).where(Scenario.id == scenario_id)
                                  .values(version=Scenario.version + 1).returning(Scenario.id)
                                  .execution_options(synchronize_session=False))
    return None if bumped is None else await _load(session, scenario_id)


async def finish_run(session: AsyncSession, *, run_id: uuid.UUID, runner: str, stopped: bool) -> None:
    """The source ended (or a stop was seen): close the run; a scenario waiting to shut down becomes inactive."""
    run = await _locked_run(session, run_id)
    if run is None or run.status != "running" or run.runner != runner:
        return
    _end_run(run, "stopped" if stopped else "completed")
    await session.flush()
    scenario = await _lock_scenario_latest(session, run.scenario_id)
    if scenario is None:
        return
    if scenario.status == "in_shutdown_processing" and scenario.current_run_id == run.id:
        await _move(session, scenario, "inactive", reason=f"run {run.id} stopped", by=f"runner:{runner}")
    else:
        announce(session, scenario)
    logger.info("scenario {} run {} {} after {} frames", run.scenario_id, run.id, run.status, run.frames_processed)


async def fail_run(session: AsyncSession, *, job: Job, runner: str, error: str) -> None:
    """Record the failure and send it to `retry_topic` in the same transaction (the orchestrator retries)."""
    run = await _locked_run(session, job.run_id)
    if run is None or run.status in TERMINAL_RUN_STATUSES or (run.status == "running" and run.runner != runner):
        return
    _end_run(run, "failed", error=error)
    await session.flush()
    scenario = await _lock_scenario_latest(session, run.scenario_id)
    if scenario is None:
        return
    if scenario.status == "in_shutdown_processing" and scenario.current_run_id == run.id:
        await _move(session, scenario, "inactive", reason=f"run {run.id} ended with an error during shutdown",
                    by=f"runner:{runner}")
        return
    announce(session, scenario)
    failure = RunFailure(scenario_id=job.scenario_id, run_id=job.run_id, attempt=run.attempt, error=_short(error),
                         runner=runner, failed_at=utcnow())
    enqueue(session, RETRY_TOPIC, failure.model_dump(mode="json"), key=str(job.scenario_id))
    logger.warning("scenario {} run {} attempt {} failed on {}: {}", job.scenario_id, job.run_id, run.attempt,
                   runner, error)


async def release_run(session: AsyncSession, *, run_id: uuid.UUID, runner: str, job: Job | None = None) -> None:
    """A runner shutting down gives its run back and queues its job again (the runner committed the
    job's offset when it claimed the run), so another runner starts it at once; not a new attempt."""
    run = await _locked_run(session, run_id)
    if run is not None and run.status == "running" and run.runner == runner:
        run.status, run.runner, run.heartbeat_at = "queued", None, None
        if job is not None:
            enqueue(session, JOBS_TOPIC, job.model_dump(mode="json"), key=str(job.scenario_id))
        logger.info("scenario {} run {} released by {}", run.scenario_id, run.id, runner)


async def heartbeat(session: AsyncSession, *, run_id: uuid.UUID, runner: str) -> bool:
    """The runner is alive and on this run: stamp `heartbeat_at`. False if the run is no longer its own."""
    updated = await session.scalar(
        update(ScenarioRun)
        .where(ScenarioRun.id == run_id, ScenarioRun.runner == runner, ScenarioRun.status == "running")
        .values(heartbeat_at=utcnow())
        .returning(ScenarioRun.id)
        .execution_options(synchronize_session=False)
    )
    return updated is not None


# --------------------------------------------------------------------------------------------
# The stale-run sweeper (one app instance at a time)
# --------------------------------------------------------------------------------------------

# pg_try_advisory_xact_lock key of the sweep: "vigil scenario sweep" as a stable 63-bit number.
SWEEP_LOCK_KEY = 0x5C3A_A710_0001


async def sweep_stale_runs(session: AsyncSession, *, stale_after_s: float, queued_after_s: float,
                           max_attempts: int, limit: int = 50) -> list[tuple[uuid.UUID, RetryOutcome]]:
    """Find current runs whose runner went silent (running, heartbeat older than `stale_after_s`) or that
    no runner claimed (queued longer than `queued_after_s`) and treat each as a failed attempt:
    re-dispatched while attempts remain, else the scenario fails with an alert. So no scenario stays in
    `*_processing` because a runner died after committing its job, or lost its database mid-run.

    Only the instance that gets the advisory lock sweeps; the lock ends with the transaction.
    """
    if not await session.scalar(select(func.pg_try_advisory_xact_lock(SWEEP_LOCK_KEY))):
        return []
    now = utcnow()
    last_sign = func.coalesce(ScenarioRun.heartbeat_at, ScenarioRun.updated_at)
    runs = (await session.scalars(
        select(ScenarioRun)
        .join(Scenario, Scenario.current_run_id == ScenarioRun.id)
        .where(Scenario.status.in_(LIVE_STATUSES),
               ((ScenarioRun.status == "running") & (last_sign < now - timedelta(seconds=stale_after_s)))
               | ((ScenarioRun.status == "queued")
                  & (ScenarioRun.updated_at < now - timedelta(seconds=queued_after_s))))
        .order_by(ScenarioRun.updated_at)
        .limit(limit)
        .with_for_update(of=ScenarioRun, skip_locked=True)
    )).all()
    outcomes: list[tuple[uuid.UUID, RetryOutcome]] = []
    for run in runs:
        if run.status == "running":
            seen = (run.heartbeat_at or run.updated_at).isoformat(timespec="seconds")
            error = f"runner {run.runner} went silent (last heartbeat {seen}; stale after {stale_after_s:g}s)"
        else:
            error = f"no runner claimed the job within {queued_after_s:g}s"
        runner = run.runner
        _end_run(run, "failed", error=error)
        await session.flush()
        failure = RunFailure(scenario_id=run.scenario_id, run_id=run.id, attempt=run.attempt, error=error,
                             runner=runner, failed_at=now)
        outcome = await handle_run_failure(session, failure=failure, max_attempts=max_attempts)
        logger.warning("scenario {} run {} attempt {} swept ({}): {}", run.scenario_id, run.id, run.attempt,
                       outcome, error)
        outcomes.append((run.scenario_id, outcome))
    return outcomes


# --------------------------------------------------------------------------------------------
# Retries (the app's `retry_topic` consumer)
# --------------------------------------------------------------------------------------------

RetryOutcome = Literal["stale", "retried", "failed", "stopped"]


async def is_current_failure(session: AsyncSession, *, failure: RunFailure) -> bool:
    """Whether the failed run is still the scenario's current one (else the message is stale)."""
    scenario = await session.scalar(select(Scenario).where(Scenario.id == failure.scenario_id))
    return scenario is not None and scenario.current_run_id == failure.run_id and scenario.status in LIVE_STATUSES


async def handle_run_failure(session: AsyncSession, *, failure: RunFailure, max_attempts: int) -> RetryOutcome:
    """Re-dispatch a failed run as attempt + 1, or, after `max_attempts`, fail the scenario and raise an alert.

    Idempotent: once handled, the scenario's current run is no longer the failed one, so a repeat is stale.
    """
    scenario = await _load(session, failure.scenario_id)
    if scenario is None or scenario.current_run_id != failure.run_id or scenario.status not in LIVE_STATUSES:
        return "stale"
    run = scenario.latest_run
    if run is not None and run.status in LIVE_RUN_STATUSES:  # normally the runner has already closed it
        _end_run(run, "failed", error=failure.error)
        await session.flush()
    if scenario.status == "in_shutdown_processing":
        await _move(session, scenario, "inactive", reason="stop requested while the run was failing", by="retry")
        return "stopped"
    if failure.attempt < max_attempts:
        await _dispatch(session, scenario, attempt=failure.attempt + 1,
                        reason=f"retry after: {failure.error}", by="retry")
        return "retried"
    error = _short(failure.error)
    await _move(session, scenario, "failed", reason=f"gave up after {failure.attempt} attempts: {error}", by="retry",
                last_error=error)
    await alerts.raise_alert(
        session, source="scenario", kind="scenario_failed", severity="warning", subject=str(scenario.id),
        title=f"Scenario {scenario.id} failed after {failure.attempt} attempts",
        data={"scenario_id": str(scenario.id), "source": mask_source(scenario.source), "error": error,
              "attempts": failure.attempt, "run_id": str(failure.run_id)},
    )
    return "failed"


__all__ = [
    "JOBS_TOPIC",
    "RETRY_TOPIC",
    "RUNNERS_GROUP",
    "TRANSITIONS",
    "Claim",
    "ConcurrentUpdate",
    "IllegalTransition",
    "ScenarioNotFound",
    "allowed_moves",
    "change_status",
    "check_transition",
    "claim_run",
    "create_scenario",
    "delete_scenario",
    "fail_run",
    "finish_run",
    "get_scenario",
    "handle_run_failure",
    "heartbeat",
    "is_current_failure",
    "list_history",
    "list_predictions",
    "list_runs",
    "list_scenarios",
    "mark_active",
    "record_batch",
    "release_run",
    "sweep_stale_runs",
]


# --- retention (run by core.retention; listed in registry.retention_policies) ----------------


async def purge_predictions(ctx: Any, *, cutoff: Any, limit: int) -> int:
    """Delete one chunk of predictions stored before `cutoff` (scenarios and runs are kept)."""
    from vigil.core.retention import delete_chunk

    return len(await delete_chunk(ctx, Prediction.id, Prediction.created_at < cutoff, limit=limit))


def retention_policies() -> list[Any]:
    """What the scenarios domain lets retention purge."""
    from vigil.core.retention import RetentionPolicy

    return [RetentionPolicy("scenario_predictions", "retention_predictions_days", purge_predictions)]
