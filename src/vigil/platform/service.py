"""Health checks of every dependency, each bounded by a timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text

from vigil import __version__
from vigil.core.context import AppContext
from vigil.core.migrations import current_revisions
from vigil.platform.schemas import DependencyCheck, Health


async def _timed(check: Callable[[], Awaitable[Any]] | None, timeout: float) -> DependencyCheck:
    if check is None:
        return DependencyCheck(status="disabled")
    start = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout)
    except Exception as exc:
        return DependencyCheck(status="down", latency_ms=round((time.perf_counter() - start) * 1000, 2),
                               error=f"{type(exc).__name__}: {exc}"[:300])
    return DependencyCheck(status="ok", latency_ms=round((time.perf_counter() - start) * 1000, 2))


async def health(ctx: AppContext) -> Health:
    """Probe every dependency concurrently; the database decides between degraded and down."""
    timeout = ctx.settings.dependency_timeout_s

    async def database() -> None:
        async with ctx.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def redis() -> None:
        await ctx.redis.ping()

    async def qdrant() -> None:
        await ctx.qdrant.get_collections()

    checks: dict[str, Callable[[], Awaitable[Any]] | None] = {
        "database": database,
        "redis": redis,
        "kafka": (lambda: ctx.bus.ping(timeout)) if ctx.bus.enabled else None,
        "redpanda": (lambda: ctx.redpanda.ping(timeout)) if ctx.redpanda.enabled else None,
        "qdrant": qdrant if ctx.qdrant is not None else None,
        "storage": ctx.storage.check,
    }
    results = await asyncio.gather(*(_timed(fn, timeout) for fn in checks.values()))
    by_name = dict(zip(checks, results, strict=True))
    by_name["storage"].backend = ctx.storage.backend
    if by_name["database"].status == "down":
        status = "down"
    elif any(c.status == "down" for c in by_name.values()):
        status = "degraded"
    else:
        status = "ok"
    return Health(status=status, version=__version__, checks=by_name)


async def schema_at_head(ctx: AppContext, heads: set[str]) -> tuple[bool, str]:
    """Is the database reachable and migrated to the code's head revision?"""
    try:
        current = await asyncio.wait_for(current_revisions(ctx.engine), ctx.settings.dependency_timeout_s)
    except Exception as exc:
        return False, f"database not ready: {type(exc).__name__}"
    if current != heads:
        return False, f"schema at {sorted(current) or 'nothing'}, code expects {sorted(heads)}"
    return True, "ok"
