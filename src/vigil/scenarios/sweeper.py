"""The stale-run sweeper: a lifespan-owned loop in every app instance; one sweeps at a time (advisory lock)."""

from __future__ import annotations

import asyncio

from loguru import logger

from vigil.core.context import AppContext
from vigil.core.db import session_scope
from vigil.scenarios import runs


class StaleRunSweeper:
    """Every few seconds, re-dispatches or fails runs whose runner stopped heartbeating (see
    `runs.sweep_stale_runs`). Runners commit a job once its run is claimed, so a runner that dies
    mid-run leaves no message to redeliver: this loop is what notices."""

    name = "scenario-stale-runs"

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._wake = asyncio.Event()
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def interval_s(self) -> float:
        # A third of the staleness bound: a dead run is found within ~1.3x the bound.
        return min(max(self.ctx.settings.scenario_stale_run_s / 3, 0.2), 10.0)

    async def run(self) -> None:
        delay = 1.0
        while not self._stopping:
            wait = self.interval_s()
            try:
                await self.sweep_once()
                delay = 1.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database down: the next round tries again
                logger.warning("scenario sweep failed ({!r}); retrying in {:.1f}s", exc, delay)
                wait, delay = delay, min(delay * 2, 30.0)
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except TimeoutError:
                pass

    async def sweep_once(self) -> int:
        """One sweep; returns how many runs it handled (0 also when another instance holds the lock)."""
        s = self.ctx.settings
        async with session_scope(self.ctx.sessionmaker) as session:
            swept = await runs.sweep_stale_runs(
                session, stale_after_s=s.scenario_stale_run_s, queued_after_s=s.scenario_stale_queued_s,
                max_attempts=s.scenario_max_attempts,
            )
        return len(swept)
