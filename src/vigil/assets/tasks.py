"""The assets domain's background tasks, owned by the app's lifespan (see `registry.background_tasks`)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from loguru import logger
from redis.exceptions import RedisError

from vigil.assets import rules, service, tracking
from vigil.core.context import AppContext
from vigil.core.db import session_scope, utcnow

LOCK_KEY = "vigil:assets:lock:{}"


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
            n = await service.purge_observations(session, older_than=cutoff)
        total += n
        if n < service.PURGE_CHUNK:
            break
    if total:
        logger.info("retention: deleted {} observations older than {}", total, cutoff.isoformat())
    return total


async def run_cleanup(ctx: AppContext) -> None:
    interval = ctx.settings.assets_cleanup_interval_s
    while True:
        try:
            if await take_turn(ctx, "cleanup", interval * 0.9):
                await purge_old_observations(ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.opt(exception=exc).error("observation retention cleanup failed; next try in {}s", interval)
        await asyncio.sleep(interval)


async def run_rules(ctx: AppContext) -> None:
    """Evaluate the alert rules every `assets_rules_interval_s` (one instance at a time: advisory lock)."""
    interval = ctx.settings.assets_rules_interval_s
    while True:
        try:
            async with session_scope(ctx.sessionmaker) as session:
                await rules.check_rules(session, now=utcnow())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.opt(exception=exc).error("asset rule check failed; next try in {}s", interval)
        await asyncio.sleep(interval)


def background_tasks(ctx: AppContext) -> dict[str, Coroutine[Any, Any, None]]:
    return {
        "assets:estimation": tracking.run_scheduler(ctx),
        "assets:retention": run_cleanup(ctx),
        "assets:rules": run_rules(ctx),
    }
