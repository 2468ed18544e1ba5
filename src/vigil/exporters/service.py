"""Exporter rules: CRUD with per-kind config checks and the SSRF guard, the delivery queue, and what
happens after each attempt (backoff, failed, auto-disable with an alert)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from loguru import logger
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.alerts import service as alerts
from vigil.core.bus import EVENTS_TOPIC
from vigil.core.db import after_commit, utcnow
from vigil.core.errors import Conflict, NotFound, ValidationFailed
from vigil.core.pagination import PageParams, paginate
from vigil.exporters.channels import CHANNEL_KINDS, sample_alert_event
from vigil.exporters.models import Delivery, Exporter
from vigil.exporters.schemas import CONFIG_MODELS, ExporterCreate, ExporterUpdate, unmask_config
from vigil.exporters.senders import Outgoing, Senders, Target
from vigil.exporters.ssrf import AllowList, TargetRefused, check_endpoints


class ExporterNotFound(NotFound):
    title = "Exporter not found"


# --- configuration ---------------------------------------------------------------------------


async def _checked_config(kind: str, config: dict[str, Any], allow: AllowList) -> dict[str, Any]:
    """Validate `config` for `kind` (422 naming the missing or bad keys) and refuse internal targets."""
    try:
        parsed = CONFIG_MODELS[kind].model_validate(config)
    except ValidationError as exc:
        errors = [
            {"loc": ["body", "config", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()
        ]
        raise ValidationFailed(f"The {kind} config is not valid.", errors=errors) from None
    clean = parsed.model_dump(exclude_none=True)
    try:
        await check_endpoints(kind, clean, allow)
        if kind == "kafka" and "bootstrap_servers" not in clean and clean["topic"] == EVENTS_TOPIC:
            raise ValidationFailed("Exporting to the app's own event topic would loop.")
    except TargetRefused as exc:
        raise ValidationFailed(
            f"Target refused: {exc}.", errors=[{"loc": ["body", "config"], "msg": str(exc), "type": "ssrf"}]
        ) from None
    return clean


async def _name_free(session: AsyncSession, name: str, exclude: uuid.UUID | None = None) -> None:
    stmt = select(Exporter.id).where(Exporter.name == name)
    if exclude is not None:
        stmt = stmt.where(Exporter.id != exclude)
    if await session.scalar(stmt) is not None:
        raise Conflict(f"An exporter named {name!r} already exists.")


async def create_exporter(
    session: AsyncSession, *, exporter_in: ExporterCreate, allow: AllowList
) -> Exporter:
    await _name_free(session, exporter_in.name)
    config = await _checked_config(exporter_in.kind, exporter_in.config, allow)
    exporter = Exporter(
        name=exporter_in.name,
        kind=exporter_in.kind,
        config=config,
        event_types=exporter_in.event_types,
        max_attempts=exporter_in.retry.max_attempts,
        backoff_seconds=exporter_in.retry.backoff_seconds,
        enabled=exporter_in.enabled,
        consecutive_failures=0,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    session.add(exporter)
    await session.flush()
    logger.info(
        "exporter {} created ({} {!r}, events {})",
        exporter.id,
        exporter.kind,
        exporter.name,
        ",".join(exporter.event_types),
    )
    return exporter


async def get_exporter(session: AsyncSession, *, exporter_id: uuid.UUID, lock: bool = False) -> Exporter:
    stmt = select(Exporter).where(Exporter.id == exporter_id)
    exporter = await session.scalar(stmt.with_for_update() if lock else stmt)
    if exporter is None:
        raise ExporterNotFound(f"Exporter {exporter_id} does not exist.")
    return exporter


async def list_exporters(
    session: AsyncSession, *, page: PageParams, kind: str | None = None, enabled: bool | None = None
) -> dict:
    stmt = select(Exporter)
    if kind:
        stmt = stmt.where(Exporter.kind == kind)
    if enabled is not None:
        stmt = stmt.where(Exporter.enabled == enabled)
    return await paginate(session, stmt.order_by(Exporter.name, Exporter.id), page)


async def update_exporter(
    session: AsyncSession, *, exporter_id: uuid.UUID, exporter_in: ExporterUpdate, allow: AllowList
) -> Exporter:
    exporter = await get_exporter(session, exporter_id=exporter_id, lock=True)
    changes = exporter_in.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None:
            raise ValidationFailed(f"'{name}' cannot be null.")
    if "name" in changes and changes["name"] != exporter.name:
        await _name_free(session, changes["name"], exclude=exporter.id)
        exporter.name = changes["name"]
    if "kind" in changes or "config" in changes:
        kind = changes.get("kind", exporter.kind)
        config = unmask_config(changes.get("config", exporter.config), exporter.config)
        exporter.config = await _checked_config(kind, config, allow)
        exporter.kind = kind
    if "event_types" in changes:
        exporter.event_types = changes["event_types"]
    for name, value in (changes.get("retry") or {}).items():
        if value is None:
            raise ValidationFailed(f"'retry.{name}' cannot be null.")
        setattr(exporter, name, value)
    if "enabled" in changes:
        await _set_enabled(session, exporter, changes["enabled"])
    await session.flush()
    logger.info("exporter {} updated ({})", exporter.id, ", ".join(sorted(changes)))
    return exporter


async def _set_enabled(session: AsyncSession, exporter: Exporter, enabled: bool) -> None:
    if enabled and not exporter.enabled:
        exporter.consecutive_failures, exporter.disabled_reason = 0, None
        # The operator fixed it: the "disabled" alert is over.
        await alerts.resolve_active(
            session, source="exporter", kind="exporter_disabled", subject=str(exporter.id)
        )
    elif not enabled and exporter.enabled:
        exporter.disabled_reason = "disabled by a user"
    exporter.enabled = enabled


async def set_enabled(session: AsyncSession, *, exporter_id: uuid.UUID, enabled: bool) -> Exporter:
    """Enable or disable; deliveries already queued wait while disabled and resume when enabled."""
    exporter = await get_exporter(session, exporter_id=exporter_id, lock=True)
    await _set_enabled(session, exporter, enabled)
    await session.flush()
    logger.info("exporter {} {}", exporter.id, "enabled" if enabled else "disabled")
    return exporter


async def delete_exporter(session: AsyncSession, *, exporter_id: uuid.UUID) -> None:
    exporter = await get_exporter(session, exporter_id=exporter_id)
    await session.delete(exporter)
    await session.flush()
    logger.info("exporter {} deleted", exporter_id)


async def list_deliveries(
    session: AsyncSession, *, exporter_id: uuid.UUID, page: PageParams, status: str | None = None
) -> dict:
    await get_exporter(session, exporter_id=exporter_id)
    stmt = select(Delivery).where(Delivery.exporter_id == exporter_id)
    if status:
        stmt = stmt.where(Delivery.status == status)
    return await paginate(session, stmt.order_by(Delivery.created_at.desc(), Delivery.id), page)


def sample_payload(exporter: Exporter) -> dict[str, Any]:
    if exporter.kind in CHANNEL_KINDS or exporter.config.get("template"):
        return sample_alert_event()  # channels render templates: show them a sample alert
    now = utcnow().isoformat()
    return {
        "type": "exporter.test",
        "ts": now,
        "data": {
            "exporter_id": str(exporter.id),
            "message": "Test delivery from Vigil",
            "example": {"plate": "AB123C", "confidence": 0.97, "captured_at": now},
        },
    }


async def test_exporter(session: AsyncSession, *, exporter_id: uuid.UUID, senders: Senders) -> dict[str, Any]:
    """Send a sample payload now (enabled or not); not recorded as a delivery, not counted as a failure."""
    exporter = await get_exporter(session, exporter_id=exporter_id)
    target = Target(exporter.id, exporter.kind, dict(exporter.config))
    item = Outgoing(uuid.uuid4(), "exporter.test", sample_payload(exporter))
    started = time.perf_counter()
    [error] = await senders.send(target, [item])
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    logger.info("exporter {} test: {} in {} ms", exporter.id, "ok" if error is None else error, latency_ms)
    return {"ok": error is None, "latency_ms": latency_ms, "error": error}


# --- the delivery queue ----------------------------------------------------------------------


def subscribes(event_types: list[str], event_type: str) -> bool:
    """Exact type, a prefix ending in '.' ('alert.' = every alert event), or '*'."""
    return any(
        t == "*" or t == event_type or (t.endswith(".") and event_type.startswith(t)) for t in event_types
    )


def _parse_ts(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


async def enqueue_deliveries(session: AsyncSession, *, message: dict[str, Any], event_id: str) -> int:
    """One pending delivery per enabled exporter subscribed to this event; idempotent per (exporter, event).

    Only events emitted after an exporter was created are exported to it (no backfill of history).
    """
    event_type = message.get("type")
    if not isinstance(event_type, str):
        return 0
    emitted_at = _parse_ts(message.get("ts"))
    exporters = (await session.scalars(select(Exporter).where(Exporter.enabled))).all()
    rows = [
        {
            "id": uuid.uuid4(),
            "exporter_id": e.id,
            "event_id": event_id,
            "event_type": event_type[:100],
            "payload": message,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": utcnow(),
        }
        for e in exporters
        if subscribes(e.event_types, event_type) and (emitted_at is None or emitted_at >= e.created_at)
    ]
    if not rows:
        return 0
    result = await session.execute(
        insert(Delivery)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["exporter_id", "event_id"])
        .returning(Delivery.id)
    )
    created = len(result.all())
    if created:
        logger.debug("{} deliveries queued for {} {}", created, event_type, event_id[:12])
    return created


async def claim_due(session: AsyncSession, *, limit: int) -> list[tuple[Delivery, Exporter]]:
    """Lock due deliveries of enabled exporters; SKIP LOCKED lets every instance's worker share the queue."""
    rows = await session.execute(
        select(Delivery, Exporter)
        .join(Exporter, Exporter.id == Delivery.exporter_id)
        .where(Delivery.status == "pending", Delivery.next_attempt_at <= utcnow(), Exporter.enabled)
        .order_by(Delivery.next_attempt_at, Delivery.created_at)
        .limit(limit)
        .with_for_update(of=Delivery, skip_locked=True)
    )
    return [(row[0], row[1]) for row in rows]


async def next_due_in(session: AsyncSession) -> float | None:
    """Seconds until the earliest pending delivery of an enabled exporter is due (None if there is none)."""
    due = await session.scalar(
        select(func.min(Delivery.next_attempt_at))
        .join(Exporter, Exporter.id == Delivery.exporter_id)
        .where(Delivery.status == "pending", Exporter.enabled)
    )
    return None if due is None else max((due - utcnow()).total_seconds(), 0.0)


def backoff(exporter: Exporter, attempts: int, max_backoff_s: float) -> timedelta:
    """backoff_seconds, doubled for every further attempt, capped."""
    return timedelta(seconds=min(exporter.backoff_seconds * 2 ** max(attempts - 1, 0), max_backoff_s))


async def send_claimed(
    session: AsyncSession,
    claimed: list[tuple[Delivery, Exporter]],
    *,
    senders: Senders,
    disable_after: int,
    max_backoff_s: float,
) -> dict[str, int]:
    """Send claimed deliveries (each exporter's in order, exporters side by side) and record the outcome."""
    groups: dict[uuid.UUID, list[Delivery]] = defaultdict(list)
    exporters: dict[uuid.UUID, Exporter] = {}
    for delivery, exporter in claimed:
        groups[exporter.id].append(delivery)
        exporters[exporter.id] = exporter

    async def run(exporter_id: uuid.UUID) -> list[str | None]:
        exporter = exporters[exporter_id]
        target = Target(exporter.id, exporter.kind, dict(exporter.config))
        items = [Outgoing(d.id, d.event_type, d.payload) for d in groups[exporter_id]]
        return await senders.send(target, items)

    ids = list(groups)
    outcomes = await asyncio.gather(*(run(i) for i in ids))
    counts = {"delivered": 0, "retry": 0, "failed": 0, "deferred": 0}
    now = utcnow()
    for exporter_id, errors in zip(ids, outcomes, strict=True):
        exporter = exporters[exporter_id]
        first_failure: datetime | None = None
        for delivery, error in zip(groups[exporter_id], errors, strict=True):
            if error is None:
                delivery.status, delivery.delivered_at, delivery.last_error = "delivered", now, None
                delivery.attempts += 1
                exporter.consecutive_failures = 0
                counts["delivered"] += 1
                logger.info(
                    "delivery {} to exporter {} delivered ({} attempt(s))",
                    delivery.id,
                    exporter.id,
                    delivery.attempts,
                )
            elif error.startswith("not tried:"):
                # Held back behind a failure: wait as long as the failed one, without spending an attempt.
                delivery.last_error = error
                delivery.next_attempt_at = first_failure or now
                counts["deferred"] += 1
            else:
                delivery.attempts += 1
                delivery.last_error = error
                exporter.consecutive_failures += 1
                if delivery.attempts >= exporter.max_attempts:
                    delivery.status = "failed"
                    counts["failed"] += 1
                    logger.warning(
                        "delivery {} to exporter {} failed for good after {} attempts: {}",
                        delivery.id,
                        exporter.id,
                        delivery.attempts,
                        error,
                    )
                else:
                    delivery.next_attempt_at = now + backoff(exporter, delivery.attempts, max_backoff_s)
                    counts["retry"] += 1
                    logger.info(
                        "delivery {} to exporter {} attempt {} failed, retry at {}: {}",
                        delivery.id,
                        exporter.id,
                        delivery.attempts,
                        delivery.next_attempt_at.isoformat(),
                        error,
                    )
                first_failure = first_failure or delivery.next_attempt_at
        if exporter.enabled and exporter.consecutive_failures >= disable_after:
            await _auto_disable(session, exporter, errors)
    await session.flush()
    return counts


async def _auto_disable(session: AsyncSession, exporter: Exporter, errors: list[str | None]) -> None:
    last_error = next((e for e in reversed(errors) if e and not e.startswith("not tried:")), "unknown error")
    exporter.enabled = False
    exporter.disabled_reason = (
        f"disabled after {exporter.consecutive_failures} consecutive failed deliveries; "
        f"last error: {last_error}"
    )[:1000]
    await alerts.raise_alert(
        session,
        source="exporter",
        kind="exporter_disabled",
        severity="warning",
        subject=str(exporter.id),
        title=f"Exporter {exporter.name!r} disabled after {exporter.consecutive_failures} failed deliveries",
        data={
            "exporter_id": str(exporter.id),
            "name": exporter.name,
            "kind": exporter.kind,
            "failures": exporter.consecutive_failures,
            "last_error": last_error,
        },
    )
    logger.warning(
        "exporter {} disabled after {} consecutive failures: {}",
        exporter.id,
        exporter.consecutive_failures,
        last_error,
    )


# --- alert policies' routing (issue 16) --------------------------------------------------------


async def missing_exporters(session: AsyncSession, *, exporter_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """The ids among `exporter_ids` that name no exporter (a policy's `notify` must name real ones)."""
    if not exporter_ids:
        return []
    found = set((await session.scalars(select(Exporter.id).where(Exporter.id.in_(exporter_ids)))).all())
    return [i for i in exporter_ids if i not in found]


async def enqueue_notifications(
    session: AsyncSession, *, notifications: list[tuple[list[uuid.UUID], dict[str, Any]]]
) -> int:
    """Queue each message for each of its named, enabled exporters, whatever their event_types (a policy
    routes it). Two statements for any number of notifications.

    Written in the caller's transaction, so a notification exists exactly when the change that caused it
    commits; from then on the delivery worker sends it with the usual retries and delivery log.
    """
    wanted = {e for ids, _ in notifications for e in ids}
    if not wanted:
        return 0
    stmt = select(Exporter.id).where(Exporter.id.in_(wanted), Exporter.enabled)
    enabled = set((await session.scalars(stmt)).all())
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "exporter_id": exporter_id,
            "event_id": uuid.uuid4().hex,  # every notification is its own event (a reminder is not a repeat)
            "event_type": str(message.get("type", "alert.notification"))[:100],
            "payload": message,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
        }
        for ids, message in notifications
        for exporter_id in dict.fromkeys(ids)
        if exporter_id in enabled
    ]
    if rows:
        # executemany form: one cached statement (insertmanyvalues batches it), not a fresh multi-VALUES
        # compile per call, which costs more than the database work for a thousand rows.
        await session.execute(insert(Delivery), rows)
        after_commit(session, _wake_workers)
    return len(rows)


async def _wake_workers() -> None:
    from vigil.exporters.worker import wake_workers  # the worker imports this module

    wake_workers()
