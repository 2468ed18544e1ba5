"""Scenario runs, the runner side: claims, heartbeats, results, the stale-run sweep and retries.

`runner.py` (the `vigil runner` process), the app's `retry_topic` consumer (`consumers.py`) and the
stale-run sweeper (`sweeper.py`) call these; the API side and other domains use `service`. Every
function takes the caller's session as its unit of work and re-checks that the run it acts on is
still the scenario's current one, so stale or duplicate messages change nothing. State changes go
through `service.move_scenario`, like the API's, so the table and the version check hold here too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from loguru import logger
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.alerts import service as alerts
from vigil.core.db import utcnow
from vigil.core.messaging import emit, enqueue
from vigil.scenarios.models import Prediction, Scenario, ScenarioRun
from vigil.scenarios.schemas import Job, RunFailure, RunRead, mask_source
from vigil.scenarios.service import JOBS_TOPIC, announce, dispatch_run, find_scenario, get_scenario, move_scenario
from vigil.scenarios.states import LIVE_RUN_STATUSES, LIVE_STATUSES, TERMINAL_RUN_STATUSES, short_error

RETRY_TOPIC = "retry_topic"
RUNNERS_GROUP = "runners_group"
# pg_try_advisory_xact_lock key of the sweep: "vigil scenario sweep" as a stable 63-bit number.
SWEEP_LOCK_KEY = 0x5C3A_A710_0001

Verdict = Literal["run", "skip", "busy"]
BatchVerdict = Literal["continue", "stop", "abort"]
RetryOutcome = Literal["stale", "retried", "failed", "stopped"]


@dataclass(frozen=True, slots=True)
class Claim:
    """What a runner does with a job (`claim_run`), and why."""

    verdict: Verdict
    reason: str = ""


# --------------------------------------------------------------------------------------------
# Claims, heartbeats and results (the runner's calls)
# --------------------------------------------------------------------------------------------


async def _locked_run(session: AsyncSession, run_id: uuid.UUID) -> ScenarioRun | None:
    return await session.scalar(select(ScenarioRun).where(ScenarioRun.id == run_id).with_for_update()
                                .execution_options(populate_existing=True))


def _superseded(scenario: Scenario | None, run: ScenarioRun) -> bool:
    return scenario is None or scenario.current_run_id != run.id or scenario.status not in LIVE_STATUSES


def _end_run(run: ScenarioRun, status: str, *, error: str | None = None) -> None:
    run.status, run.finished_at = status, utcnow()
    run.heartbeat_at = None
    if error is not None:
        run.error = short_error(error)


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
    scenario = await find_scenario(session, run.scenario_id)
    if _superseded(scenario, run):
        _end_run(run, "cancelled")
        return Claim("skip", "superseded by a later state change")
    if scenario is None:
        raise AssertionError()
    if scenario.status == "in_shutdown_processing":
        _end_run(run, "stopped")
        await session.flush()
        await move_scenario(session, scenario, "inactive", reason="stopped before the run started",
                            by=f"runner:{runner}")
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
    scenario = await find_scenario(session, run.scenario_id)
    if _superseded(scenario, run):
        return False
    if scenario is None:
        raise AssertionError()
    run.heartbeat_at = utcnow()
    if scenario.status == "init_startup_processing":
        await move_scenario(session, scenario, "active", reason=f"run {run.id} attempt {run.attempt} started",
                            by=f"runner:{runner}")
    return True


async def record_batch(session: AsyncSession, *, run_id: uuid.UUID, runner: str, predictions: list[dict[str, Any]],
                       frames_read: int, frames_processed: int, fps: float | None) -> BatchVerdict:
    """Store a batch of detections and the run's progress; say whether to go on, stop (shutdown) or abort."""
    run = await _locked_run(session, run_id)
    if run is None or run.status != "running" or run.runner != runner:
        return "abort"  # deleted, cancelled, or taken over by another runner
    scenario = await find_scenario(session, run.scenario_id)
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
    return None if bumped is None else await find_scenario(session, scenario_id)


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
        await move_scenario(session, scenario, "inactive", reason=f"run {run.id} stopped", by=f"runner:{runner}")
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
        await move_scenario(session, scenario, "inactive", reason=f"run {run.id} ended with an error during shutdown",
                            by=f"runner:{runner}")
        return
    announce(session, scenario)
    failure = RunFailure(scenario_id=job.scenario_id, run_id=job.run_id, attempt=run.attempt, error=short_error(error),
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


async def is_current_failure(session: AsyncSession, *, failure: RunFailure) -> bool:
    """Whether the failed run is still the scenario's current one (else the message is stale)."""
    scenario = await session.scalar(select(Scenario).where(Scenario.id == failure.scenario_id))
    return scenario is not None and scenario.current_run_id == failure.run_id and scenario.status in LIVE_STATUSES


async def handle_run_failure(session: AsyncSession, *, failure: RunFailure, max_attempts: int) -> RetryOutcome:
    """Re-dispatch a failed run as attempt + 1, or, after `max_attempts`, fail the scenario and raise an alert.

    Idempotent: once handled, the scenario's current run is no longer the failed one, so a repeat is stale.
    """
    scenario = await find_scenario(session, failure.scenario_id)
    if scenario is None or scenario.current_run_id != failure.run_id or scenario.status not in LIVE_STATUSES:
        return "stale"
    run = scenario.latest_run
    if run is not None and run.status in LIVE_RUN_STATUSES:  # normally the runner has already closed it
        _end_run(run, "failed", error=failure.error)
        await session.flush()
    if scenario.status == "in_shutdown_processing":
        await move_scenario(session, scenario, "inactive", reason="stop requested while the run was failing",
                            by="retry")
        return "stopped"
    if failure.attempt < max_attempts:
        await dispatch_run(session, scenario, attempt=failure.attempt + 1,
                        reason=f"retry after: {failure.error}", by="retry")
        return "retried"
    error = short_error(failure.error)
    await move_scenario(session, scenario, "failed", reason=f"gave up after {failure.attempt} attempts: {error}",
                        by="retry", last_error=error)
    await alerts.raise_alert(
        session, source="scenario", kind="scenario_failed", severity="warning", subject=str(scenario.id),
        title=f"Scenario {scenario.id} failed after {failure.attempt} attempts",
        data={"scenario_id": str(scenario.id), "source": mask_source(scenario.source), "error": error,
              "attempts": failure.attempt, "run_id": str(failure.run_id)},
    )
    return "failed"


__all__ = [
    "RETRY_TOPIC",
    "RUNNERS_GROUP",
    "SWEEP_LOCK_KEY",
    "BatchVerdict",
    "Claim",
    "RetryOutcome",
    "Verdict",
    "claim_run",
    "fail_run",
    "finish_run",
    "handle_run_failure",
    "heartbeat",
    "is_current_failure",
    "mark_active",
    "record_batch",
    "release_run",
    "sweep_stale_runs",
]
