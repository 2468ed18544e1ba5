"""The `observations` consumer: tag readings from Redpanda, keyed by tag_id so one tag stays in order."""

from __future__ import annotations

from vigil.assets.metrics import OBSERVATIONS
from vigil.assets.tracking import estimation, service
from vigil.assets.tracking.schemas import ObservationIn, ObservationMessage
from vigil.core.context import AppContext
from vigil.core.db import session_scope, utcnow
from vigil.core.messaging import ConsumerRecord, ConsumerSpec, PoisonMessage, parse_json

TOPIC = "observations"
GROUP = "assets-observations"


def _parse(record: ConsumerRecord, max_future_s: float) -> ObservationIn:
    """The reading in a record, or PoisonMessage saying what is wrong with it."""
    obs = parse_json(record, ObservationMessage)
    if service.in_the_future([obs], now=utcnow(), max_future_s=max_future_s):
        raise PoisonMessage(f"observed_at {obs.observed_at.isoformat()} is in the future")
    return obs


def observation_handlers(ctx: AppContext):
    """(per-record handler, batch handler): both store readings (idempotent by their key) and schedule
    the tags' estimates once the transaction has committed."""
    settings = ctx.settings

    async def store(observations: list[ObservationIn]) -> None:
        async with session_scope(ctx.sessionmaker) as session:
            _, touched = await service.ingest_observations(
                session, observations=observations, max_batch=len(observations),
                max_future_s=settings.assets_max_future_s)
        await estimation.schedule(ctx.redis, touched, settings.assets_debounce_s)

    async def handle(record: ConsumerRecord) -> None:
        try:
            obs = _parse(record, settings.assets_max_future_s)
        except PoisonMessage:
            OBSERVATIONS.labels("invalid").inc()
            raise
        await store([obs])

    async def handle_batch(records: list[ConsumerRecord]) -> None:
        # One bad record fails the batch; the runner then takes the records one by one and dead-letters it.
        await store([_parse(record, settings.assets_max_future_s) for record in records])

    return handle, handle_batch


def consumer_specs(ctx: AppContext) -> list[ConsumerSpec]:
    """One work consumer: every instance joins the group, partitions (by tag) are shared out."""
    if not ctx.settings.redpanda:
        return []
    handle, handle_batch = observation_handlers(ctx)
    return [ConsumerSpec(
        name="assets-observations", topics=[TOPIC], handler=handle, batch_handler=handle_batch, group=GROUP,
        bootstrap_servers=ctx.settings.redpanda, max_retries=ctx.settings.consumer_max_retries,
        retry_backoff_s=ctx.settings.consumer_retry_backoff_s, batch_size=500,
    )]
