"""The assets domain's background tasks, owned by the app's lifespan (see `registry.lifespan_hooks`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

from loguru import logger
from prometheus_client import Counter
from redis.exceptions import RedisError

from vigil.assets.rules import checks
from vigil.assets.tracking import estimation
from vigil.assets.tracking import service as tracking
from vigil.core.context import AppContext
from vigil.core.db import session_scope, utcnow

LOCK_KEY = "vigil:assets:lock:{}"
# Turns taken, by job: summed over instances, one per interval however many instances run.
JOB_RUNS = Counter("vigil_assets_job_runs_total", "Periodic assets jobs run by this instance", ["job"])


async def take_turn(ctx: AppContext, name: str, ttl_s: float) -> bool:
    """One instance per period runs a periodic job; with Redis down, each may (the jobs are idempotent)."""
    try:
        return bool(await ctx.redis.set(LOCK_KEY.format(name), "1", nx=True, px=max(int(ttl_s * 1000), 1)))
    except RedisError:
        return True


async def purge_old_observations(ctx: AppContext) -> int:
    """Delete raw readings past the retention, in chunks so no transaction grows large."""
    cutoff = utcnow() - timedelta(days=ctx.settings.assets_retention_days)
    total = 0
    while True:
        async with session_scope(ctx.sessionmaker) as session:
            n = await tracking.purge_observations(session, older_than=cutoff)
        total += n
        if n < tracking.PURGE_CHUNK:
            break
    if total:
        logger.info("retention: deleted {} observations older than {}", total, cutoff.isoformat())
    return total


async def _every(ctx: AppContext, name: str, interval: float, job: Callable[[], Awaitable[object]]) -> None:
    """Run `job` every `interval` seconds on one instance at a time; a failure waits for the next turn."""
    while True:
        try:
            if await take_turn(ctx, name, interval * 0.9):
                JOB_RUNS.labels(name).inc()
                await job()
        except Exception as exc:
            logger.opt(exception=exc).error("assets {} failed; next try in {}s", name, interval)
        await asyncio.sleep(interval)


async def check_rules_once(ctx: AppContext) -> None:
    """One rules check in its own unit of work (raises and resolves alerts)."""
    async with session_scope(ctx.sessionmaker) as session:
        await checks.check_rules(session, now=utcnow())


def background_tasks(ctx: AppContext) -> dict[str, Coroutine[Any, Any, None]]:
    """The domain's background loops by name: estimation scheduler, observation retention, rules check."""
    return {
        "assets:estimation": estimation.run_scheduler(ctx),
        "assets:retention": _every(ctx, "cleanup", ctx.settings.assets_cleanup_interval_s,
                                   lambda: purge_old_observations(ctx)),
        "assets:rules": _every(ctx, "rules", ctx.settings.assets_rules_interval_s, lambda: check_rules_once(ctx)),
    }
