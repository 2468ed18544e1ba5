"""Retention: rows past their kind's age are purged in chunks, by one instance at a time, off the request path.

Domains own their tables, so each one states what it keeps and how it purges (a `RetentionPolicy` in
its service, listed by `registry.retention_policies`); this module only runs them: once per
`VIGIL_RETENTION_INTERVAL_S`, under a PostgreSQL advisory lock so two instances never purge at once,
a chunk per transaction so no transaction grows large, with a metric and one log line per run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from loguru import logger
from prometheus_client import Counter, Gauge
from sqlalchemy import delete, select, text

from vigil.core.db import session_scope, utcnow
from vigil.core.tasks import TaskSet

if TYPE_CHECKING:
    from vigil.core.context import AppContext

RETENTION_LOCK = 0x56494732  # pg advisory lock id: one retention run at a time across instances

RETENTION_DELETED = Counter("vigil_retention_deleted_total", "Rows deleted by retention", ["kind"])
RETENTION_RUNS = Counter("vigil_retention_runs_total", "Retention runs by outcome", ["result"])
RETENTION_LAST_RUN = Gauge("vigil_retention_last_run_timestamp_seconds", "When a retention run last finished")

# purge(ctx, cutoff=..., limit=...) deletes at most `limit` rows older than `cutoff` (and their
# blobs), commits, and returns how many rows went; the runner calls it until it returns < limit.
PurgeChunk = Callable[..., Awaitable[int]]


@dataclass(frozen=True)
class RetentionPolicy:
    """One kind of row: the Settings field holding its age in days (0 = keep), and its chunk purge."""

    kind: str
    setting: str
    purge: PurgeChunk


async def purge_kind(ctx: AppContext, policy: RetentionPolicy, *, now: datetime | None = None) -> int:
    """Purge one kind completely (chunk after chunk); returns the rows deleted (0 when it is kept)."""
    days = float(getattr(ctx.settings, policy.setting))
    if days <= 0:
        return 0
    cutoff = (now or utcnow()) - timedelta(days=days)
    limit = ctx.settings.retention_chunk
    total = 0
    while True:
        n = await policy.purge(ctx, cutoff=cutoff, limit=limit)
        total += n
        if n:
            RETENTION_DELETED.labels(policy.kind).inc(n)
        if n < limit:
            return total
        await asyncio.sleep(0)  # let requests in between chunks


async def run_once(ctx: AppContext, policies: Sequence[RetentionPolicy], *,
                   now: datetime | None = None) -> dict[str, int] | None:
    """One retention run over every kind, if no other instance is running one (then None).

    The advisory lock is held on its own connection for the run; the purges use their own sessions.
    """
    started = time.perf_counter()
    async with ctx.engine.connect() as lock_conn:
        if not await lock_conn.scalar(text("SELECT pg_try_advisory_lock(:id)"), {"id": RETENTION_LOCK}):
            RETENTION_RUNS.labels("skipped").inc()
            logger.debug("retention: another instance is running it")
            return None
        await lock_conn.commit()  # the session lock outlives this statement's transaction
        try:
            deleted: dict[str, int] = {}
            failed: list[str] = []
            for policy in policies:
                try:
                    deleted[policy.kind] = await purge_kind(ctx, policy, now=now)
                except Exception as exc:  # one failing kind does not stop the others
                    failed.append(policy.kind)
                    logger.opt(exception=exc).error("retention: purging {} failed", policy.kind)
        finally:
            await lock_conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": RETENTION_LOCK})
            await lock_conn.commit()
    RETENTION_RUNS.labels("failed" if failed else "ok").inc()
    RETENTION_LAST_RUN.set_to_current_time()
    summary = ", ".join(f"{k}={n}" for k, n in deleted.items()) or "nothing configured"
    logger.info("retention run: deleted {} in {:.0f} ms{}", summary, (time.perf_counter() - started) * 1000,
                f"; failed: {', '.join(failed)}" if failed else "")
    return deleted


def retention_hook(policies: Callable[[], Sequence[RetentionPolicy]]
                   ) -> Callable[[AppContext], AbstractAsyncContextManager[None]]:
    """A lifespan hook running `run_once` every `VIGIL_RETENTION_INTERVAL_S` (first run shortly after start)."""

    @asynccontextmanager
    async def hook(ctx: AppContext) -> AsyncIterator[None]:
        async def loop() -> None:
            interval = ctx.settings.retention_interval_s
            await asyncio.sleep(min(interval, 30.0))
            while True:
                try:
                    await run_once(ctx, policies())
                except Exception as exc:  # the database may be down: try again next interval
                    RETENTION_RUNS.labels("failed").inc()
                    logger.opt(exception=exc).error("retention run failed; next in {:.0f}s", interval)
                await asyncio.sleep(interval)

        tasks = TaskSet()
        tasks.spawn("retention", loop())
        try:
            yield
        finally:
            for task in tasks.tasks.values():
                task.cancel()
            await tasks.drain(5.0)

    return hook


async def delete_chunk(ctx: AppContext, pk: Any, *where: Any, limit: int,
                       returning: Sequence[Any] = ()) -> list[Any]:
    """Delete up to `limit` rows of `pk`'s table matching `where`, in one committed transaction;
    returns the `returning` columns of the deleted rows (or their keys)."""
    table = pk.table
    stmt = delete(table).where(pk.in_(select(pk).where(*where).limit(limit))).returning(*(returning or [pk]))
    async with session_scope(ctx.sessionmaker) as session:
        return list((await session.execute(stmt)).all())
