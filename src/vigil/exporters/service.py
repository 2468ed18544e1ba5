"""Exporter rules: CRUD with per-kind config checks and the SSRF guard, the delivery queue, and what
happens after each attempt (backoff, failed, auto-disable with an alert)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loguru import logger
from pydantic import ValidationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.alerts import service as alerts
from vigil.core.context import AppContext
from vigil.core.crud import ensure_unique, get_or_404, null_not_allowed, patch_changes
from vigil.core.db import after_commit, utcnow
from vigil.core.errors import NotFound, ValidationFailed
from vigil.core.messaging import EVENTS_TOPIC
from vigil.core.metrics import EXPORTER_HELD_DROPPED
from vigil.core.pagination import PageParams, paginate
from vigil.core.retention import RetentionPolicy, delete_chunk
from vigil.exporters.channels import CHANNEL_KINDS, sample_alert_event
from vigil.exporters.models import Delivery, Exporter
from vigil.exporters.outgoing import Outgoing, Target
from vigil.exporters.schemas import CONFIG_MODELS, ExporterCreate, ExporterUpdate, masked_fields, merge_secrets
from vigil.exporters.senders import Senders
from vigil.exporters.ssrf import REFUSED, AllowList, TargetRefused, check_endpoints
from vigil.exporters.wakeups import wake_workers


class ExporterNotFound(NotFound):
    title = "Exporter not found"


# --- configuration ---------------------------------------------------------------------------


def _secrets_required(paths: list[list[str]], why: str) -> ValidationFailed:
    names = ", ".join("config." + ".".join(p) for p in paths)
    return ValidationFailed(
        f"{names}: {why}",
        errors=[{"loc": ["body", "config", *p], "msg": why, "type": "secret_required"} for p in paths],
    )


async def _checked_config(kind: str, config: dict[str, Any], allow: AllowList) -> dict[str, Any]:
    """Validate `config` for `kind` (422 naming the missing or bad keys) and refuse internal targets."""
    if masked := masked_fields(kind, config):
        raise _secrets_required(masked, "a masked value ('***') stands for no stored secret here; send the secret")
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
        logger.info("exporter target refused at save: {}", exc)
        raise ValidationFailed(
            "Target refused: it is not a public address and not in VIGIL_EXPORTER_ALLOWED_HOSTS.",
            errors=[{"loc": ["body", "config"], "msg": "target refused", "type": "ssrf"}],
        ) from None
    return clean


async def _name_free(session: AsyncSession, name: str, exclude: uuid.UUID | None = None) -> None:
    await ensure_unique(session, Exporter, name=name, exclude_id=exclude,
                        detail=f"An exporter named {name!r} already exists.")


async def create_exporter(
    session: AsyncSession, *, exporter_in: ExporterCreate, allow: AllowList
) -> Exporter:
    """Store a new exporter; its name is unique and its target must pass the SSRF allow-list (422)."""
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
    """The exporter, or 404; `lock` row-locks it so a concurrent change waits for this one."""
    return await get_or_404(session, Exporter, exporter_id, error=ExporterNotFound, with_for_update=lock)


async def list_exporters(
    session: AsyncSession, *, page: PageParams, kind: str | None = None, enabled: bool | None = None
) -> dict:
    """A page of exporters by name, optionally of one kind or enabled state."""
    stmt = select(Exporter)
    if kind:
        stmt = stmt.where(Exporter.kind == kind)
    if enabled is not None:
        stmt = stmt.where(Exporter.enabled == enabled)
    return await paginate(session, stmt.order_by(Exporter.name, Exporter.id), page)


async def update_exporter(
    session: AsyncSession, *, exporter_id: uuid.UUID, exporter_in: ExporterUpdate, allow: AllowList
) -> Exporter:
    """Apply the fields sent (null is 422); a changed target re-passes the SSRF check and needs its secrets."""
    exporter = await get_exporter(session, exporter_id=exporter_id, lock=True)
    changes = patch_changes(exporter_in, nullable=())
    if "name" in changes and changes["name"] != exporter.name:
        await _name_free(session, changes["name"], exclude=exporter.id)
        exporter.name = changes["name"]
    if "kind" in changes or "config" in changes:
        kind = changes.get("kind", exporter.kind)
        # Stored secrets follow the config only to the same target: a masked value sent back with a new
        # URL / host / bootstrap servers (or kind) is refused, so a write key cannot redirect credentials.
        config, missing = merge_secrets(kind, changes.get("config", exporter.config), exporter.kind, exporter.config)
        if missing:
            raise _secrets_required(
                missing, "the target changed (or nothing is stored): send this secret again, or leave it out"
            )
        exporter.config = await _checked_config(kind, config, allow)
        exporter.kind = kind
    if "event_types" in changes:
        exporter.event_types = changes["event_types"]
    retry = changes.get("retry") or {}
    if nulls := [f"retry.{name}" for name, value in retry.items() if value is None]:
        raise null_not_allowed(nulls)
    for name, value in retry.items():
        setattr(exporter, name, value)
    if "enabled" in changes:
        await _set_enabled(session, exporter, changes["enabled"])
    await session.flush()
    logger.info("exporter {} updated ({})", exporter.id, ", ".join(sorted(changes)))
    return exporter


async def _set_enabled(
    session: AsyncSession, exporter: Exporter, enabled: bool, *, replay: bool = False
) -> tuple[int, int]:
    """Returns (replayed, discarded) held deliveries; both 0 unless enabling."""
    replayed = discarded = 0
    if enabled:
        if not exporter.enabled:
            exporter.consecutive_failures, exporter.failing_since, exporter.disabled_reason = 0, None, None
            # The operator fixed it: the "disabled" alert is over.
            await alerts.resolve_active(
                session, source="exporter", kind="exporter_disabled", subject=str(exporter.id)
            )
        held = (Delivery.exporter_id == exporter.id) & (Delivery.status == "held")
        if replay:
            # Due now, in the order they arrived (created_at breaks the tie of one next_attempt_at).
            result = await session.execute(
                update(Delivery)
                .where(held)
                .values(status="pending", next_attempt_at=utcnow(), attempts=0)
                .returning(Delivery.id)
            )
            replayed = len(result.all())
        else:
            discarded = len((await session.execute(delete(Delivery).where(held).returning(Delivery.id))).all())
    elif exporter.enabled:
        exporter.disabled_reason = "disabled by a user"
    exporter.enabled = enabled
    return replayed, discarded


async def set_enabled(
    session: AsyncSession, *, exporter_id: uuid.UUID, enabled: bool, replay: bool = False
) -> tuple[Exporter, int, int]:
    """Enable or disable; returns (exporter, replayed, discarded).

    Deliveries queued before a disable stay pending and go out on enable. Events that arrived while
    disabled were held: enabling with `replay` makes them pending (sent in arrival order), enabling
    without it discards them.
    """
    exporter = await get_exporter(session, exporter_id=exporter_id, lock=True)
    replayed, discarded = await _set_enabled(session, exporter, enabled, replay=replay)
    await session.flush()
    logger.info(
        "exporter {} {}{}",
        exporter.id,
        "enabled" if enabled else "disabled",
        f" ({replayed} held deliveries replayed, {discarded} discarded)" if enabled else "",
    )
    return exporter, replayed, discarded


async def delete_exporter(session: AsyncSession, *, exporter: Exporter) -> None:
    """Delete the exporter; its deliveries go with it (cascade), so nothing more is sent to it."""
    exporter_id = exporter.id
    await session.delete(exporter)
    await session.flush()
    logger.info("exporter {} deleted", exporter_id)


async def list_deliveries(
    session: AsyncSession, *, exporter_id: uuid.UUID, page: PageParams, status: str | None = None
) -> dict:
    """The exporter's delivery log, newest first (404 for an unknown exporter), to see what went out."""
    await get_exporter(session, exporter_id=exporter_id)
    stmt = select(Delivery).where(Delivery.exporter_id == exporter_id)
    if status:
        stmt = stmt.where(Delivery.status == status)
    return await paginate(session, stmt.order_by(Delivery.created_at.desc(), Delivery.id), page)


def sample_payload(exporter: Exporter) -> dict[str, Any]:
    """What the `test` endpoint sends: a sample alert for templated kinds, else an `exporter.test` event."""
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


async def test_exporter(*, exporter: Exporter, senders: Senders) -> dict[str, Any]:
    """Send a sample payload now (enabled or not); not recorded as a delivery, not counted as a failure."""
    target = Target(exporter.id, exporter.kind, dict(exporter.config))
    item = Outgoing(uuid.uuid4(), "exporter.test", sample_payload(exporter))
    started = time.perf_counter()
    [error] = await senders.send(target, [item])
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    logger.info("exporter {} test: {} in {} ms", exporter.id, "ok" if error is None else error, latency_ms)
    if error == REFUSED:  # neither text nor timing that would map internal hosts and ports
        return {"ok": False, "latency_ms": 0.0, "error": REFUSED}
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


async def enqueue_deliveries(
    session: AsyncSession, *, events: Sequence[tuple[dict[str, Any], str]], max_held: int = 10000
) -> int:
    """One delivery per exporter subscribed to each (message, event_id); idempotent per (exporter, event).

    Enabled exporters get a `pending` delivery; disabled ones a `held` one, kept (at most `max_held` per
    exporter, the oldest dropped) until the exporter is enabled with replay. Only events emitted after
    an exporter was created are exported to it (no backfill of history). The exporters are read once
    for all the events, and the deliveries written in one statement. Returns the pending ones made.
    """
    typed = [(m, event_id, t) for m, event_id in events if isinstance(t := m.get("type"), str)]
    if not typed:
        return 0
    exporters = (await session.scalars(select(Exporter))).all()
    if not exporters:
        return 0
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "exporter_id": e.id,
            "event_id": event_id,
            "event_type": event_type[:100],
            "payload": message,
            "status": "pending" if e.enabled else "held",
            "attempts": 0,
            "next_attempt_at": now,
        }
        for message, event_id, event_type in typed
        for emitted_at in (_parse_ts(message.get("ts")),)
        for e in exporters
        if subscribes(e.event_types, event_type) and (emitted_at is None or emitted_at >= e.created_at)
    ]
    if not rows:
        return 0
    # executemany form: one cached statement that insertmanyvalues batches (see enqueue_notifications).
    result = await session.execute(
        insert(Delivery)
        .on_conflict_do_nothing(index_elements=["exporter_id", "event_id"])
        .returning(Delivery.exporter_id, Delivery.status),
        rows,
    )
    made = result.all()
    pending = sum(1 for _, status in made if status == "pending")
    for exporter_id in {e for e, status in made if status == "held"}:
        await _bound_held(session, exporter_id=exporter_id, max_held=max_held)
    if made:
        logger.debug("{} deliveries queued, {} held for {} event(s)", pending, len(made) - pending, len(typed))
    return pending


async def _bound_held(session: AsyncSession, *, exporter_id: uuid.UUID, max_held: int) -> None:
    """Keep the newest `max_held` held deliveries of an exporter: an operator replaying wants the latest."""
    beyond = (
        select(Delivery.id)
        .where(Delivery.exporter_id == exporter_id, Delivery.status == "held")
        .order_by(Delivery.created_at.desc(), Delivery.id.desc())
        .offset(max_held)
    )
    dropped = (
        await session.execute(delete(Delivery).where(Delivery.id.in_(beyond)).returning(Delivery.id))
    ).all()
    if dropped:
        EXPORTER_HELD_DROPPED.labels(exporter_id=str(exporter_id)).inc(len(dropped))
        logger.warning(
            "exporter {} is disabled and holds {} deliveries already: dropped the {} oldest",
            exporter_id,
            max_held,
            len(dropped),
        )


@dataclass(frozen=True, slots=True)
class Claimed:
    """Deliveries of one exporter claimed for one send: plain snapshots, usable after the session closed."""

    target: Target
    items: list[Outgoing]


async def due_exporters(
    session: AsyncSession, *, exclude: Collection[uuid.UUID] = (), limit: int = 100
) -> list[uuid.UUID]:
    """Enabled exporters with deliveries due now (minus those this worker is already sending for)."""
    stmt = (
        select(Delivery.exporter_id)
        .join(Exporter, Exporter.id == Delivery.exporter_id)
        .where(Delivery.status == "pending", Delivery.next_attempt_at <= utcnow(), Exporter.enabled)
        .group_by(Delivery.exporter_id)
        .order_by(func.min(Delivery.next_attempt_at))
        .limit(limit)
    )
    if exclude:
        stmt = stmt.where(Delivery.exporter_id.not_in(list(exclude)))
    return list((await session.scalars(stmt)).all())


async def claim_due(
    session: AsyncSession, *, exporter_id: uuid.UUID, limit: int, lease_s: float
) -> Claimed | None:
    """Claim due deliveries of one enabled exporter, in order, for `lease_s` seconds.

    The claim is the row's `next_attempt_at` moved past the lease, committed at once: no lock or
    connection is held while sending. SKIP LOCKED keeps two instances' claims apart; a worker that
    dies mid-send leaves its rows pending, due again when the lease ends (at least once).
    """
    exporter = await session.scalar(select(Exporter).where(Exporter.id == exporter_id, Exporter.enabled))
    if exporter is None:
        return None
    rows = (
        await session.scalars(
            select(Delivery)
            .where(
                Delivery.exporter_id == exporter_id,
                Delivery.status == "pending",
                Delivery.next_attempt_at <= utcnow(),
            )
            .order_by(Delivery.next_attempt_at, Delivery.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not rows:
        return None
    lease_until = utcnow() + timedelta(seconds=lease_s)
    await session.execute(
        update(Delivery).where(Delivery.id.in_([d.id for d in rows])).values(next_attempt_at=lease_until)
    )
    return Claimed(
        Target(exporter.id, exporter.kind, dict(exporter.config)),
        [Outgoing(d.id, d.event_type, d.payload) for d in rows],
    )


async def renew_claims(session: AsyncSession, *, delivery_ids: list[uuid.UUID], lease_s: float) -> None:
    """Extend the lease on deliveries still being sent, so no other worker takes them meanwhile."""
    await session.execute(
        update(Delivery)
        .where(Delivery.id.in_(delivery_ids), Delivery.status == "pending")
        .values(next_attempt_at=utcnow() + timedelta(seconds=lease_s))
    )


async def release_claims(session: AsyncSession, *, delivery_ids: list[uuid.UUID]) -> None:
    """Make claimed deliveries due now again (the worker stopped before it knew how the send went)."""
    await session.execute(
        update(Delivery)
        .where(Delivery.id.in_(delivery_ids), Delivery.status == "pending")
        .values(next_attempt_at=utcnow())
    )


async def next_due_in(session: AsyncSession, *, exclude: Collection[uuid.UUID] = ()) -> float | None:
    """Seconds until the earliest pending delivery of an enabled exporter is due (None if there is none)."""
    stmt = (
        select(func.min(Delivery.next_attempt_at))
        .join(Exporter, Exporter.id == Delivery.exporter_id)
        .where(Delivery.status == "pending", Exporter.enabled)
    )
    if exclude:
        stmt = stmt.where(Delivery.exporter_id.not_in(list(exclude)))
    due = await session.scalar(stmt)
    return None if due is None else max((due - utcnow()).total_seconds(), 0.0)


def backoff(exporter: Exporter, attempts: int, max_backoff_s: float) -> timedelta:
    """backoff_seconds, doubled for every further attempt, capped."""
    return timedelta(seconds=min(exporter.backoff_seconds * 2 ** max(attempts - 1, 0), max_backoff_s))


async def record_outcomes(
    session: AsyncSession,
    *,
    exporter_id: uuid.UUID,
    outcomes: list[tuple[uuid.UUID, str | None]],
    disable_after_s: float,
    max_backoff_s: float,
) -> dict[str, int]:
    """Record how a send went (delivered, retry later, failed for good) and disable the exporter when it
    has been failing without a success for `disable_after_s`. Runs after the send, in its own transaction."""
    counts = {"delivered": 0, "retry": 0, "failed": 0, "deferred": 0}
    exporter = await session.scalar(select(Exporter).where(Exporter.id == exporter_id).with_for_update())
    if exporter is None:
        return counts  # deleted while sending: its deliveries went with it
    by_id = {
        d.id: d
        for d in (
            await session.scalars(select(Delivery).where(Delivery.id.in_([i for i, _ in outcomes])))
        ).all()
    }
    now = utcnow()
    first_failure: datetime | None = None
    last_error: str | None = None
    for delivery_id, error in outcomes:
        delivery = by_id.get(delivery_id)
        if delivery is None or delivery.status != "pending":
            continue
        if error is None:
            delivery.status, delivery.delivered_at, delivery.last_error = "delivered", now, None
            delivery.attempts += 1
            exporter.consecutive_failures, exporter.failing_since = 0, None
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
            last_error = error
            delivery.attempts += 1
            delivery.last_error = error
            exporter.consecutive_failures += 1
            if exporter.failing_since is None:
                exporter.failing_since = now
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
    if (
        exporter.enabled
        and last_error is not None
        and exporter.failing_since is not None
        and (now - exporter.failing_since).total_seconds() >= disable_after_s
    ):
        await _auto_disable(session, exporter, last_error)
    await session.flush()
    return counts


async def _auto_disable(session: AsyncSession, exporter: Exporter, last_error: str) -> None:
    if exporter.failing_since is None:
        raise AssertionError()
    since = exporter.failing_since.isoformat(timespec="seconds")
    exporter.enabled = False
    exporter.disabled_reason = (
        f"disabled after failing since {since} ({exporter.consecutive_failures} failed deliveries, "
        f"no success in between); last error: {last_error}"
    )[:1000]
    await alerts.raise_alert(
        session,
        source="exporter",
        kind="exporter_disabled",
        severity="warning",
        subject=str(exporter.id),
        title=f"Exporter {exporter.name!r} disabled: failing since {since}",
        data={
            "exporter_id": str(exporter.id),
            "name": exporter.name,
            "kind": exporter.kind,
            "failing_since": exporter.failing_since.isoformat(),
            "failures": exporter.consecutive_failures,
            "last_error": last_error[:1000],
        },
    )
    logger.warning(
        "exporter {} disabled: failing since {} ({} failures); events are held from now on: {}",
        exporter.id,
        since,
        exporter.consecutive_failures,
        last_error,
    )


# --- retention (run by core.retention; listed in registry.retention_policies) ----------------


async def purge_deliveries(ctx: AppContext, *, cutoff: datetime, limit: int) -> int:
    """Delete one chunk of finished deliveries (delivered or failed, with their payloads) last touched
    before `cutoff`; pending ones are never purged, whatever their age."""
    finished = Delivery.status.in_(("delivered", "failed"))
    return len(await delete_chunk(ctx, Delivery.id, finished, Delivery.updated_at < cutoff, limit=limit))


def retention_policies() -> list[RetentionPolicy]:
    """What the exporters domain lets retention purge: finished deliveries, which keep whole payloads."""
    return [RetentionPolicy("exporter_deliveries", "retention_deliveries_days", purge_deliveries)]


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


async def _wake_workers() -> None:  # after_commit takes a coroutine function
    wake_workers()
