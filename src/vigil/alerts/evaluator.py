"""The policy evaluator: a lifespan-owned loop that runs `policies.evaluate` every few seconds.

Every instance runs one; the advisory lock inside `evaluate` lets one pass at a time do the work, so
N instances (or `serve --workers N`) act once, and if the instance holding it dies, another takes over on
its next tick.
"""

from __future__ import annotations

import asyncio

from loguru import logger

from vigil.alerts import policies
from vigil.core.context import AppContext
from vigil.core.db import session_scope


class PolicyEvaluator:
    name = "alert-policies"

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.interval_s = ctx.settings.alert_policy_interval_s
        self.batch = ctx.settings.alert_policy_batch_size
        self._wake = asyncio.Event()
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run_once(self) -> dict[str, int] | None:
        """One pass in its own unit of work; None when another instance holds the lock."""
        async with session_scope(self.ctx.sessionmaker) as session:
            return await policies.evaluate(session, batch=self.batch, retry_in_s=self.interval_s)

    async def run(self) -> None:
        delay = self.interval_s
        while not self._stopping:
            wait = self.interval_s
            try:
                counts = await self.run_once()
                delay = self.interval_s
                if counts and any(counts.values()):
                    logger.debug("alert policy pass: {}", counts)
                if counts and counts.get("due", 0) >= self.batch:
                    wait = 0  # more is due: go again at once
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database down and the like: try again later
                logger.warning("alert policy pass failed ({!r}); retrying in {:.1f}s", exc, delay)
                wait, delay = delay, min(delay * 2, 30.0)
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except TimeoutError:
                pass
