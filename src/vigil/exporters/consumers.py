"""The exporters' consumer: every event on `vigil.events` becomes deliveries for subscribed exporters."""

from __future__ import annotations

import hashlib

from vigil.core.context import AppContext
from vigil.core.db import session_scope
from vigil.core.messaging import EVENTS_TOPIC, ConsumerRecord, ConsumerSpec, parse_json
from vigil.exporters import service
from vigil.exporters.wakeups import wake_workers

GROUP = "vigil-exporters"


def consumer_specs(ctx: AppContext) -> list[ConsumerSpec]:
    """A shared group: each event is turned into deliveries by one instance, once per exporter."""

    async def to_deliveries(record: ConsumerRecord) -> None:
        message = parse_json(record)  # not JSON -> PoisonMessage -> DLQ
        if not isinstance(message, dict):
            return  # not an event envelope; nothing to export
        # The message as published identifies the event: a redelivered record hashes the same.
        event_id = hashlib.sha256(record.value or b"").hexdigest()
        async with session_scope(ctx.sessionmaker) as session:
            created = await service.enqueue_deliveries(
                session, message=message, event_id=event_id, max_held=ctx.settings.exporter_max_held
            )
        if created:
            wake_workers()

    return [
        ConsumerSpec(
            name="exporter-deliveries",
            topics=[EVENTS_TOPIC],
            handler=to_deliveries,
            group=GROUP,
            bootstrap_servers=ctx.settings.kafka_bootstrap_servers or "",
            max_retries=ctx.settings.consumer_max_retries,
            retry_backoff_s=ctx.settings.consumer_retry_backoff_s,
        )
    ]
