"""Audit rules: what a request's audit row says, the in-process batch writer, queries and retention.

Cost on the request path: the middleware builds one small record and appends it to an in-memory
deque (no I/O, no await). A background writer inserts what accumulated in one multi-row INSERT every
`VIGIL_AUDIT_FLUSH_INTERVAL_S` (default 1 s) or as soon as 500 are waiting, and once more on shutdown.
The price: a process that is killed outright loses at most the last interval's entries; a database
outage keeps them in memory (bounded at 10,000, the oldest dropped and counted) until it returns.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loguru import logger
from prometheus_client import Counter
from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.audit.models import AuditEntry
from vigil.core.context import AppContext
from vigil.core.db import session_scope, utcnow
from vigil.core.pagination import PageParams, paginate

AUDIT_WRITTEN = Counter("vigil_audit_entries_total", "Audit entries written to the database")
AUDIT_DROPPED = Counter("vigil_audit_dropped_total", "Audit entries dropped because the buffer was full")

MAX_BUFFER = 10_000
FLUSH_AT = 500
PURGE_CHUNK = 5_000
RETENTION_LOCK = 0x56494741  # pg advisory lock id: one audit purge at a time across instances
VERBS = {"POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete", "GET": "read", "HEAD": "read"}


@dataclass(slots=True)
class AuditRecord:
    """What the middleware saw; turned into a row by the writer, off the request path."""

    at: datetime
    principal: str | None
    key_id: uuid.UUID | None
    method: str
    route: str
    path: str
    path_params: dict[str, Any]
    status: int
    request_id: str | None
    body: bytes | None = None  # the JSON of a 201, for the id of what was created


def action_of(method: str, route: str) -> str:
    """`exporters.update` for PATCH /api/v1/exporters/{id}; `exporters.test` for POST .../{id}/test."""
    segments = [s for s in route.removeprefix("/api/v1").split("/") if s]
    literals = [s for s in segments if not s.startswith("{")]
    if not literals:
        return f"{route}.{VERBS.get(method, method.lower())}"[:200]
    if method == "POST" and len(literals) > 1 and not segments[-1].startswith("{") and segments[0] != "auth":
        return ".".join(literals)[:200]  # an action on a resource: alerts.acknowledge, scenarios.status
    return (".".join(literals) + "." + VERBS.get(method, method.lower()))[:200]


def target_of(record: AuditRecord) -> str | None:
    """The id of what was acted on: the created resource's id, else the route's last path parameter."""
    if record.status == 201 and record.body:
        try:
            created = json.loads(record.body)
        except ValueError:
            created = None
        if isinstance(created, dict) and created.get("id") is not None:
            return str(created["id"])[:200]
    if record.path_params:
        return str(list(record.path_params.values())[-1])[:200]
    return None


def row_of(record: AuditRecord) -> dict[str, Any]:
    """The `audit_log` row of one request, with every text cut to its column's length so an insert never fails."""
    return {
        "id": uuid.uuid4(),
        "at": record.at,
        "principal": record.principal[:200] if record.principal else None,
        "key_id": record.key_id,
        "method": record.method[:10],
        "route": record.route[:300],
        "path": record.path[:2000],
        "action": action_of(record.method, record.route),
        "target_id": target_of(record),
        "status": record.status,
        "request_id": record.request_id,
    }


class AuditWriter:
    """The per-process buffer and the loop that flushes it in batches."""

    def __init__(self, ctx: AppContext, *, flush_interval_s: float) -> None:
        self.ctx = ctx
        self.flush_interval_s = flush_interval_s
        self.buffer: deque[AuditRecord] = deque()
        self._wake = asyncio.Event()
        self._stopping = False

    def add(self, record: AuditRecord) -> None:
        """Queue one entry (request path: no I/O)."""
        if len(self.buffer) >= MAX_BUFFER:
            self.buffer.popleft()
            AUDIT_DROPPED.inc()
        self.buffer.append(record)
        if len(self.buffer) >= FLUSH_AT:
            self._wake.set()

    async def flush(self) -> int:
        """Write every queued entry in one INSERT; on failure they go back to the front of the queue."""
        if not self.buffer:
            return 0
        batch = [self.buffer.popleft() for _ in range(min(len(self.buffer), MAX_BUFFER))]
        try:
            async with session_scope(self.ctx.sessionmaker) as session:
                await session.execute(insert(AuditEntry), [row_of(r) for r in batch])
        except BaseException:
            self.buffer.extendleft(reversed(batch))
            while len(self.buffer) > MAX_BUFFER:
                self.buffer.pop()
                AUDIT_DROPPED.inc()
            raise
        AUDIT_WRITTEN.inc(len(batch))
        return len(batch)

    async def run(self) -> None:
        delay = self.flush_interval_s
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
                delay = self.flush_interval_s
            except Exception as exc:  # database down: keep the entries, try again later
                logger.warning("audit flush failed ({!r}); {} entries kept", exc, len(self.buffer))
                delay = min(max(delay * 2, 1.0), 30.0)

    async def close(self) -> None:
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(self.flush(), 5)
        except Exception as exc:
            logger.error("audit: {} entries not written at shutdown ({!r})", len(self.buffer), exc)


async def list_audit(
    session: AsyncSession, *, page: PageParams, since: datetime | None = None, key_id: uuid.UUID | None = None
) -> dict:
    """Audit entries newest first, optionally since a time and for one key."""
    stmt = select(AuditEntry)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if key_id is not None:
        stmt = stmt.where(AuditEntry.key_id == key_id)
    return await paginate(session, stmt.order_by(AuditEntry.at.desc(), AuditEntry.id), page)


async def purge_chunk(session: AsyncSession, *, older_than: datetime, limit: int | None = None) -> int | None:
    """Delete up to `limit` entries older than `older_than`; None if another instance holds the purge lock."""
    if not await session.scalar(text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": RETENTION_LOCK}):
        return None
    ids = select(AuditEntry.id).where(AuditEntry.at < older_than).limit(limit or PURGE_CHUNK).scalar_subquery()
    result = await session.execute(delete(AuditEntry).where(AuditEntry.id.in_(ids)))
    return result.rowcount  # type: ignore[attr-defined]


async def purge_expired(ctx: AppContext, *, retention_days: float) -> int:
    """Apply the retention in chunks (short transactions), one instance at a time; returns rows deleted."""
    cutoff = utcnow() - timedelta(days=retention_days)
    total = 0
    while True:
        async with session_scope(ctx.sessionmaker) as session:
            n = await purge_chunk(session, older_than=cutoff)
        if n is None:
            break
        total += n
        if n < PURGE_CHUNK:
            break
    if total:
        logger.info("audit retention: deleted {} entries older than {}", total, cutoff.isoformat())
    return total


async def _retention_loop(ctx: AppContext) -> None:
    settings = ctx.settings
    while True:
        try:
            await purge_expired(ctx, retention_days=settings.audit_retention_days)
        except Exception as exc:
            logger.warning("audit retention failed ({!r}); next try in {}s", exc, settings.audit_purge_interval_s)
        await asyncio.sleep(settings.audit_purge_interval_s)


@asynccontextmanager
async def audit_runtime(ctx: AppContext) -> AsyncIterator[AuditWriter]:
    """Lifespan hook: the writer (in ctx.extensions['audit'] for the middleware) and the retention loop."""
    writer = AuditWriter(ctx, flush_interval_s=ctx.settings.audit_flush_interval_s)
    ctx.extensions["audit"] = writer
    flusher = asyncio.create_task(writer.run(), name="audit-writer")
    retention = asyncio.create_task(_retention_loop(ctx), name="audit-retention")
    try:
        yield writer
    finally:
        retention.cancel()
        writer._stopping = True
        writer._wake.set()
        await asyncio.gather(flusher, retention, return_exceptions=True)
        await writer.close()
        ctx.extensions.pop("audit", None)
