"""The `observations` consumer: tag readings from Redpanda, keyed by tag_id so one tag stays in order."""

from __future__ import annotations

from vigil.assets import service, tracking
from vigil.assets.metrics import OBSERVATIONS
from vigil.assets.schemas import ObservationIn
from vigil.core.bus import ConsumerRecord, ConsumerSpec, PoisonMessage, parse_json
from vigil.core.context import AppContext
from vigil.core.db import session_scope, utcnow

TOPIC = "observations"
GROUP = "assets-observations"


def observation_handler(ctx: AppContext):  # noqa: ANN201
    settings = ctx.settings

    async def handle(record: ConsumerRecord) -> None:
        """Store one reading (idempotent by its key) and schedule the tag's estimate after commit."""
        try:
            obs = parse_json(record, ObservationIn)
            if service.stale_or_future([obs], now=utcnow(), max_future_s=settings.assets_max_future_s):
                raise PoisonMessage(f"observed_at {obs.observed_at.isoformat()} is in the future")
        except PoisonMessage:
            OBSERVATIONS.labels("invalid").inc()
            raise
        async with session_scope(ctx.sessionmaker) as session:
            _, touched = await service.ingest_observations(
                session, observations=[obs], max_batch=1, max_future_s=settings.assets_max_future_s)
        await tracking.schedule(ctx.redis, touched, settings.assets_debounce_s)

    return handle


def consumer_specs(ctx: AppContext) -> list[ConsumerSpec]:
    """One work consumer: every instance joins the group, partitions (by tag) are shared out."""
    if not ctx.settings.redpanda:
        return []
    return [ConsumerSpec(
        name="assets-observations", topics=[TOPIC], handler=observation_handler(ctx), group=GROUP,
        bootstrap_servers=ctx.settings.redpanda, max_retries=ctx.settings.consumer_max_retries,
        retry_backoff_s=ctx.settings.consumer_retry_backoff_s, batch_size=500,
    )]
