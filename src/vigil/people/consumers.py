"""`person_reid_alerts`: JSON alerts from the ReID pipeline become alerts (source "reid").

Work consumer (shared group): one instance handles each record. Every record is first kept in the
recent raw messages; a record that is not JSON or lacks the schema goes to the DLQ (PoisonMessage);
a redelivered record is recognised by its digest and changes nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from loguru import logger
from redis.exceptions import RedisError

from vigil.alerts import service as alerts_service
from vigil.core.context import AppContext
from vigil.core.db import session_scope, utcnow
from vigil.core.messaging import ConsumerRecord, ConsumerSpec, parse_json
from vigil.people import service
from vigil.people.schemas import ReidAlertMessage
from vigil.zones import service as zones_service

TOPIC = "person_reid_alerts"
GROUP = "vigil-reid-alerts"
PRUNE_EVERY = 500  # records between two prunes of the idempotency ledger


def record_digest(record: ConsumerRecord) -> str:
    """Same record delivered again -> same digest; the same JSON produced again -> a new one.

    A dead letter replayed from `<topic>.dlq` carries its original coordinates in headers: it gets
    the digest of the record it was, so replaying it twice changes nothing twice."""
    headers = dict(record.headers or ())
    identity: tuple[object, ...] = (record.topic, record.partition, record.offset, record.timestamp)
    if headers.get("x-original-offset", b"") != b"" and "x-replayed-from" in headers:
        identity = tuple(headers.get(k, b"").decode() for k in (
            "x-original-topic", "x-original-partition", "x-original-offset", "x-original-timestamp"))
    h = hashlib.sha256()
    for part in identity:
        h.update(f"{part}\x1f".encode())
    h.update(record.value or b"")
    return h.hexdigest()


def raw_message(record: ConsumerRecord) -> dict[str, Any]:
    """The record as kept in the recent-messages list: its JSON when it parses, else its text."""
    value: Any = None
    if record.value is not None:
        try:
            value = json.loads(record.value)
        except (UnicodeDecodeError, json.JSONDecodeError):
            value = record.value.decode("utf-8", errors="replace")[:4000]
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": record.key.decode("utf-8", errors="replace") if record.key else None,
        "timestamp": (datetime.fromtimestamp(record.timestamp / 1000, UTC).isoformat()
                      if record.timestamp else None),
        "received_at": utcnow().isoformat(),
        "value": value,
    }


def alert_fields(msg: ReidAlertMessage, *, person: Any, zone: Any) -> alerts_service.AlertSpec:
    """Arguments of raise_alert for one message, with the person and zone resolved when known."""
    who = f"{person.name if person else 'unknown person'} (global_id {msg.global_id})"
    where = f" in zone {msg.zone_id}" if msg.zone_id else ""
    if zone is not None:
        where = f" in {zone.name} ({zone.zone_id})"
    data: dict[str, Any] = {
        **msg.extras(),  # unknown fields first, so they can never overwrite the known ones
        "global_id": msg.global_id,
        "zone_id": msg.zone_id,
        "camera_id": msg.camera_id,
        "message": msg.message,
        "ts": msg.ts.isoformat() if msg.ts else None,
        "person_id": str(person.id) if person else None,
        "person_name": person.name if person else None,
        "zone_name": zone.name if zone else None,
        "zone_kind": zone.kind if zone else None,
    }
    subject = f"global_id:{msg.global_id}" + (f"/zone:{msg.zone_id}" if msg.zone_id else "")
    return {
        "source": "reid",
        "kind": msg.kind,
        "severity": msg.severity,
        "title": (msg.message or f"{msg.kind}: {who}{where}")[:500],
        "subject": subject[:200],
        "data": data,
        "at": msg.ts,
    }


def reid_alert_specs(ctx: AppContext) -> list[ConsumerSpec]:
    settings = ctx.settings
    handled = 0

    async def remember(records: list[ConsumerRecord]) -> None:
        try:
            await alerts_service.remember_messages(ctx.redis, messages=[raw_message(r) for r in records],
                                                   keep=settings.alert_recent_messages)
        except RedisError as exc:  # a debugging aid: never lose the alert over it
            logger.warning("cannot keep {} raw message(s) from {}[{}]@{}: {!r}", len(records), records[0].topic,
                           records[0].partition, records[0].offset, exc)

    async def handle_parsed(session: Any, pairs: list[tuple[ConsumerRecord, ReidAlertMessage]]) -> list[Any]:
        """Raise the alerts of many records in one unit of work; people and zones looked up once each."""
        nonlocal handled
        done = []
        digests = [record_digest(record) for record, _ in pairs]
        fresh = await service.claim_reid_messages(session, digests=digests)
        people = await service.find_by_global_ids(session, global_ids={msg.global_id for _, msg in pairs})
        zones = await zones_service.find_zones(session, zone_ids={msg.zone_id for _, msg in pairs if msg.zone_id})
        todo: list[ReidAlertMessage] = []
        for (record, msg), digest in zip(pairs, digests, strict=True):
            if digest not in fresh:
                logger.info("reid record {}[{}]@{} already handled; skipped", record.topic, record.partition,
                            record.offset)
                continue
            fresh.discard(digest)  # the same record twice in one batch is handled once
            todo.append(msg)
        specs: list[alerts_service.AlertSpec] = [
            alert_fields(msg, person=people.get(msg.global_id), zone=zones.get(msg.zone_id) if msg.zone_id else None)
            for msg in todo
        ]
        raised = await alerts_service.raise_alerts(session, specs)
        for msg, (alert, created) in zip(todo, raised, strict=True):
            done.append((msg, alert.id, created, alert.count))
        before, handled = handled, handled + len(todo)
        if handled // PRUNE_EVERY > before // PRUNE_EVERY:
            await service.prune_reid_ledger(session)
        return done

    def log(done: list[Any]) -> None:
        for msg, alert_id, created, count in done:
            logger.info("reid alert {} {} (global_id {}, zone {}, camera {}, count {})", alert_id,
                        "created" if created else "updated", msg.global_id, msg.zone_id, msg.camera_id, count)

    async def store(pairs: list[tuple[ConsumerRecord, ReidAlertMessage]]) -> list[Any]:
        async with session_scope(ctx.sessionmaker) as session:
            return await handle_parsed(session, pairs)

    async def handle(record: ConsumerRecord) -> None:
        try:
            msg = parse_json(record, ReidAlertMessage)  # PoisonMessage -> DLQ
        except Exception:
            await remember([record])  # kept even when it does not parse: that is when it is looked at
            raise
        # The raw copy goes to Redis while the unit of work runs: one wait instead of two in a row.
        _, done = await asyncio.gather(remember([record]), store([(record, msg)]))
        log(done)

    async def handle_batch(records: list[ConsumerRecord]) -> None:
        # All or nothing: a record that does not parse fails the batch, and the runner handles the
        # records one by one (so only that one is dead-lettered); raw messages are kept once the
        # whole batch parses, so the fallback does not keep them twice.
        pairs = [(record, parse_json(record, ReidAlertMessage)) for record in records]
        _, done = await asyncio.gather(remember(records), store(pairs))
        log(done)

    return [ConsumerSpec(
        name="reid-alerts", topics=[TOPIC], handler=handle, batch_handler=handle_batch, group=GROUP,
        bootstrap_servers=settings.kafka_bootstrap_servers or "", from_beginning=True,
        fetch_max_wait_ms=20,  # a live path: this bounds the broker hop's latency (see main.LIVE_FETCH_WAIT_MS)
    )]
