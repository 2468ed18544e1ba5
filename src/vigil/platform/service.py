"""Health checks of every dependency, each bounded by a timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.errors import KafkaError
from redis.exceptions import LockError, RedisError
from sqlalchemy import Text, cast, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from vigil import __version__
from vigil.alerts import service as alerts_service
from vigil.core.context import AppContext
from vigil.core.db import session_scope
from vigil.core.errors import Conflict, ServiceUnavailable
from vigil.core.messaging import Bus, OutboxEvent, dlq
from vigil.core.messaging.outbox import ParkedEvent
from vigil.core.migrations import current_revisions
from vigil.core.pagination import PageParams, paginate
from vigil.platform.schemas import DependencyCheck, Health
from vigil.topics import REDPANDA_TOPICS


async def _timed(
    check: Callable[[], Awaitable[Any]] | None, timeout: float,  # noqa: ASYNC109 - times out each check
) -> DependencyCheck:
    if check is None:
        return DependencyCheck(status="disabled")
    start = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout)
    except Exception as exc:
        return DependencyCheck(status="down", latency_ms=round((time.perf_counter() - start) * 1000, 2),
                               error=f"{type(exc).__name__}: {exc}"[:300])
    return DependencyCheck(status="ok", latency_ms=round((time.perf_counter() - start) * 1000, 2))


async def health(ctx: AppContext, *, consumers: dict[str, Any] | None = None) -> Health:
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
    return Health(status=status, version=__version__, checks=by_name, consumers=consumers or {})


async def schema_at_head(ctx: AppContext, heads: set[str]) -> tuple[bool, str]:
    """Is the database reachable and migrated to the code's head revision?"""
    try:
        current = await asyncio.wait_for(current_revisions(ctx.engine), ctx.settings.dependency_timeout_s)
    except Exception as exc:
        return False, f"database not ready: {type(exc).__name__}"
    if current != heads:
        return False, f"schema at {sorted(current) or 'nothing'}, code expects {sorted(heads)}"
    return True, "ok"


# --------------------------------------------------------------------------------------------
# Outbox and dead letters (admin)
# --------------------------------------------------------------------------------------------

REPLAY_LOCK_TTL_S = 120


async def list_outbox(session: AsyncSession, *, status: str, page: PageParams) -> dict:
    """Outbox rows in one state (parked: what the broker refused, with the reason), oldest first."""
    stmt = (select(OutboxEvent.id, OutboxEvent.topic, OutboxEvent.key, OutboxEvent.status, OutboxEvent.reason,
                   OutboxEvent.created_at, OutboxEvent.parked_at,
                   OutboxEvent.payload["type"].as_string().label("event_type"),
                   func.length(cast(OutboxEvent.payload, Text)).label("payload_bytes"))
            .where(OutboxEvent.status == status).order_by(OutboxEvent.id))
    result = await paginate(session, stmt, page, scalars=False)
    result["items"] = [dict(row._mapping) for row in result["items"]]
    return result


async def outbox_parked_alert(ctx: AppContext, *, parked: list[ParkedEvent]) -> None:
    """Raise one `platform` alert per topic for rows the relay parked, so a person looks at them."""
    async with session_scope(ctx.sessionmaker) as session:
        for p in parked:
            await alerts_service.raise_alert(
                session, source="platform", kind="outbox_parked", severity="warning",
                title=f"An event the broker refused was parked ({p.event_type or p.topic})"[:500],
                subject=f"outbox:{p.topic}"[:200],
                data={"outbox_id": p.id, "topic": p.topic, "key": p.key, "event_type": p.event_type,
                      "reason": p.reason, "payload_bytes": p.size},
            )


def _brokers(ctx: AppContext) -> list[tuple[Bus, str]]:
    """The distinct brokers dead letters can be on: Kafka, and Redpanda when it is another broker."""
    out: list[tuple[Bus, str]] = []
    for bus in (ctx.bus, ctx.redpanda):
        if bus.enabled and all(b.bootstrap_servers != bus.bootstrap_servers for b, _ in out):
            out.append((bus, bus.bootstrap_servers or ""))
    return out


def _broker_down(exc: BaseException) -> ServiceUnavailable:
    return ServiceUnavailable(f"The message broker is not reachable: {type(exc).__name__}.",
                              headers={"Retry-After": "5"})


async def list_dead_letters(ctx: AppContext) -> list[dict]:
    """Every `<topic>.dlq` on every broker, with how many dead letters wait to be replayed."""
    timeout = ctx.settings.dependency_timeout_s
    out: list[dict] = []
    try:
        for _, bootstrap in _brokers(ctx):
            out += [vars(d) for d in await dlq.dead_letter_counts(bootstrap, timeout_s=timeout)]
    except (KafkaError, OSError, TimeoutError) as exc:
        raise _broker_down(exc) from exc
    return out


async def replay_dead_letters(ctx: AppContext, *, topic: str, limit: int | None = None) -> int:
    """Send up to `limit` dead letters of `topic` back to it; one replay per topic at a time."""
    original = topic.removesuffix(dlq.DLQ_SUFFIX)
    bus = ctx.redpanda if original in REDPANDA_TOPICS else ctx.bus
    if not bus.enabled:
        raise ServiceUnavailable("No message broker is configured.")
    lock = ctx.redis.lock(f"vigil:dlq-replay:{original}", timeout=REPLAY_LOCK_TTL_S, blocking_timeout=30)
    try:
        if not await lock.acquire():
            raise Conflict(f"A replay of {original} is already running.")
    except RedisError as exc:
        raise ServiceUnavailable("Redis is not reachable.", headers={"Retry-After": "5"}) from exc
    try:
        return await dlq.replay_dead_letters(bus, bus.bootstrap_servers or "", original, limit=limit,
                                             timeout_s=ctx.settings.dependency_timeout_s * 3)
    except (KafkaError, OSError, TimeoutError) as exc:
        raise _broker_down(exc) from exc
    finally:
        try:
            await lock.release()
        except (RedisError, LockError):
            pass
