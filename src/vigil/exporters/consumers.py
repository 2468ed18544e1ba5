"""The exporters' consumer: every event on `vigil.events` becomes deliveries for subscribed exporters."""

from __future__ import annotations

import hashlib
from typing import Any

from vigil.core.context import AppContext
from vigil.core.db import session_scope
from vigil.core.messaging import EVENTS_TOPIC, ConsumerRecord, ConsumerSpec, parse_json
from vigil.exporters import service
from vigil.exporters.wakeups import wake_workers

GROUP = "vigil-exporters"


def consumer_specs(ctx: AppContext) -> list[ConsumerSpec]:
    """A shared group: each event is turned into deliveries by one instance, once per exporter."""

    def event(record: ConsumerRecord) -> tuple[dict[str, Any], str] | None:
        message = parse_json(record)  # not JSON -> PoisonMessage -> DLQ
        if not isinstance(message, dict):
            return None  # not an event envelope; nothing to export
        # The message as published identifies the event: a redelivered record hashes the same.
        return message, hashlib.sha256(record.value or b"").hexdigest()

    async def enqueue(records: list[ConsumerRecord]) -> None:
        # All or nothing, as every batch handler: a record that does not parse fails the batch, and
        # the runner hands the records over one by one, so only that one is dead-lettered.
        events = [e for e in map(event, records) if e is not None]
        if not events:
            return
        async with session_scope(ctx.sessionmaker) as session:
            created = await service.enqueue_deliveries(session, events=events, max_held=ctx.settings.exporter_max_held)
        if created:
            wake_workers()

    async def to_deliveries(record: ConsumerRecord) -> None:
        await enqueue([record])

    return [
        ConsumerSpec(
            name="exporter-deliveries",
            topics=[EVENTS_TOPIC],
            handler=to_deliveries,
            batch_handler=enqueue,
            group=GROUP,
            bootstrap_servers=ctx.settings.kafka_bootstrap_servers or "",
            max_retries=ctx.settings.consumer_max_retries,
            retry_backoff_s=ctx.settings.consumer_retry_backoff_s,
        )
    ]
