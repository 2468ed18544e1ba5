"""The app's `retry_topic` consumer: failed runs come back here to be re-dispatched or given up on."""

from __future__ import annotations

import asyncio

from loguru import logger

from vigil.core.context import AppContext
from vigil.core.db import session_scope
from vigil.core.messaging import ConsumerRecord, ConsumerSpec, parse_json
from vigil.scenarios import runs
from vigil.scenarios.schemas import RunFailure

RETRY_GROUP = "scenario_retries"
MAX_BACKOFF_S = 60.0


def backoff_s(base_s: float, attempt: int) -> float:
    """Wait before attempt + 1: base, 2 x base, 4 x base, ... at most a minute."""
    return min(base_s * 2 ** (attempt - 1), MAX_BACKOFF_S)


def consumer_specs(ctx: AppContext) -> list[ConsumerSpec]:
    settings = ctx.settings

    async def on_run_failed(record: ConsumerRecord) -> None:
        failure = parse_json(record, RunFailure)  # PoisonMessage -> retry_topic.dlq
        async with session_scope(ctx.sessionmaker) as session:
            current = await runs.is_current_failure(session, failure=failure)
        if current and failure.attempt < settings.scenario_max_attempts:
            # Waiting here holds back this partition's later failures too; backoffs are short and bounded.
            await asyncio.sleep(backoff_s(settings.scenario_retry_backoff_s, failure.attempt))
        async with session_scope(ctx.sessionmaker) as session:
            outcome = await runs.handle_run_failure(session, failure=failure,
                                                       max_attempts=settings.scenario_max_attempts)
        logger.info("scenario {} run {} attempt {} failure handled: {}", failure.scenario_id, failure.run_id,
                    failure.attempt, outcome)

    return [ConsumerSpec(
        name="scenario-retries", topics=[runs.RETRY_TOPIC], handler=on_run_failed, group=RETRY_GROUP,
        bootstrap_servers=settings.kafka_bootstrap_servers or "", max_retries=settings.consumer_max_retries,
        retry_backoff_s=settings.consumer_retry_backoff_s,
    )]
