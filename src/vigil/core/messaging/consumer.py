"""The consumer runner every domain uses.

`ConsumerRunner` reads a topic with manual commits: a record's offset is committed only after its
handler returned (the handler commits its own database work first). What a handler's failure means
decides what happens to the record (`classify`):

- *poison*: the record itself is bad (not JSON, wrong schema, a 4xx domain error, a value the
  handler rejects). It goes to `<topic>.dlq` with the reason in headers, and the runner goes on.
  Dead letters can be replayed (`vigil dlq replay`).
- *transient*: something the handler needs is down (PostgreSQL, Redis, the broker, Qdrant, a
  connection or a timeout). The runner pauses its partitions, seeks back to the first record not
  yet handled, backs off with jitter (up to `max_backoff_s`) and tries again, for ever: an outage
  never dead-letters live data. `status()` says `waiting` with the reason meanwhile.
- *unknown* (any other exception): retried in place `max_retries` times, then treated as
  transient too (paused and retried with backoff, never dead-lettered). An unexpected exception is
  far more often an outage in a shape we did not list than a bad record, and a stuck partition
  shows in /health and the logs while a dead-lettered live record is silently gone from the live
  view. A handler that knows a record is bad raises PoisonMessage (or a 4xx domain error).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from loguru import logger
from pydantic import BaseModel, ValidationError

from vigil.core.db import utcnow
from vigil.core.errors import DomainError, ServiceUnavailable, bad_value_reason
from vigil.core.messaging.producer import Bus
from vigil.core.metrics import CONSUMER_LAG, CONSUMER_MESSAGES


class PoisonMessage(Exception):
    """A record that can never be handled (bad JSON, wrong schema): it goes to the DLQ at once."""


# Errors that say "this message is bad", as opposed to "something we need is down".
POISON_ERRORS: tuple[type[BaseException], ...] = (
    PoisonMessage, ValidationError, json.JSONDecodeError, UnicodeDecodeError, ValueError, TypeError, KeyError,
)

Handler = Callable[[ConsumerRecord], Awaitable[None]]
BatchHandler = Callable[[list[ConsumerRecord]], Awaitable[None]]
Kind = Literal["poison", "transient", "unknown"]

# SQLSTATE classes that mean "the database is not available right now": connection exceptions,
# insufficient resources, operator intervention (shutdown, restart), transaction rollback (deadlock,
# serialization), system errors.
_TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57", "40", "58")


def _transient_types() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [ConnectionError, OSError, TimeoutError, KafkaError, ServiceUnavailable]
    try:
        from sqlalchemy.exc import InterfaceError, OperationalError
        from sqlalchemy.exc import TimeoutError as PoolTimeout

        kinds += [OperationalError, InterfaceError, PoolTimeout]
    except ImportError:  # pragma: no cover
        pass
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeout

        kinds += [RedisConnectionError, RedisTimeout]
    except ImportError:  # pragma: no cover
        pass
    try:
        import httpx

        kinds.append(httpx.TransportError)
    except ImportError:  # pragma: no cover
        pass
    try:
        from asyncpg.exceptions import InterfaceError as PgInterfaceError
        from asyncpg.exceptions import PostgresConnectionError

        kinds += [PostgresConnectionError, PgInterfaceError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(kinds)


TRANSIENT_ERRORS = _transient_types()


def classify(exc: BaseException) -> Kind:
    """Is a handler's failure the record's fault (poison), an outage (transient), or unknown?"""
    if isinstance(exc, DomainError):
        return "transient" if isinstance(exc, ServiceUnavailable) or exc.status >= 500 else "poison"
    if isinstance(exc, TRANSIENT_ERRORS):
        return "transient"
    try:
        from sqlalchemy.exc import DBAPIError
    except ImportError:  # pragma: no cover
        DBAPIError = ()  # type: ignore[assignment,misc]
    if isinstance(exc, DBAPIError):  # isinstance(exc, ()) is False without SQLAlchemy
        if exc.connection_invalidated:
            return "transient"
        if bad_value_reason(exc) is not None:  # the database refuses a value of the record
            return "poison"
        code = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")
        if code[:2] in _TRANSIENT_SQLSTATE_CLASSES:
            return "transient"
        cause = exc.orig.__cause__ if exc.orig is not None else None
        if cause is not None and cause is not exc and classify(cause) == "transient":
            return "transient"
        return "unknown"
    if isinstance(exc, POISON_ERRORS):
        return "poison"
    cause = exc.__cause__
    if cause is not None and cause is not exc and classify(cause) == "transient":
        return "transient"
    return "unknown"


class _Retry(Exception):
    """Raised inside the loop: stop handling this fetch, seek back and wait (an outage)."""

    def __init__(self, record: ConsumerRecord, exc: BaseException) -> None:
        super().__init__(repr(exc))
        self.record = record
        self.exc = exc


def parse_json(record: ConsumerRecord, model: type[BaseModel] | None = None) -> Any:
    """Decode a record's JSON value (optionally into a model), or raise PoisonMessage saying why."""
    if record.value is None:
        raise PoisonMessage("empty message")
    try:
        data = json.loads(record.value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PoisonMessage(f"not JSON: {exc}") from exc
    if model is None:
        return data
    if not isinstance(data, dict):
        raise PoisonMessage(f"expected a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors())
        raise PoisonMessage(f"schema: {problems}") from exc


METADATA_MAX_AGE_MS = 5_000


@dataclass
class ConsumerSpec:
    """What to consume and how. `group=None` is fan-out: every instance reads every record."""

    name: str
    topics: list[str]
    handler: Handler
    group: str | None
    bootstrap_servers: str
    from_beginning: bool = True
    max_retries: int | None = None  # None: VIGIL_CONSUMER_MAX_RETRIES
    retry_backoff_s: float | None = None  # None: VIGIL_CONSUMER_RETRY_BACKOFF_S
    batch_size: int = 100
    # How long the broker may hold a fetch open waiting for data. The embedded broker holds it the
    # whole time even when data arrives, so this bounds delivery latency, and each fetch costs CPU in
    # both processes even when idle: at 50 ms the six consumers kept Vigil at 8% and the broker at 9%
    # of a core doing nothing. Work consumers (exporters, observations, scenarios) take 250 ms; the live
    # path (ReID alerts, the WebSocket fan-out) sets 20 ms.
    fetch_max_wait_ms: int = 250
    dlq: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    # Optional: take a fetch's whole batch in one call (one transaction for many small records), the
    # records of all its partitions together (each partition's in order). It must be all or nothing;
    # when it raises, the batch is handled again partition by partition and then record by record
    # with `handler`, so retries and dead letters still apply to the one record at fault.
    batch_handler: BatchHandler | None = None


class ConsumerRunner:
    """Runs one ConsumerSpec until stopped: handle, pause and retry on outages, dead-letter poison, commit."""

    def __init__(self, spec: ConsumerSpec, dlq_bus: Bus | None, *, max_retries: int = 3,
                 retry_backoff_s: float = 0.2, max_backoff_s: float = 10.0) -> None:
        self.spec = spec
        self.max_retries = spec.max_retries if spec.max_retries is not None else max_retries
        self.retry_backoff_s = spec.retry_backoff_s if spec.retry_backoff_s is not None else retry_backoff_s
        self.max_backoff_s = max(max_backoff_s, self.retry_backoff_s)
        self.dlq_bus = dlq_bus
        self.consumer: AIOKafkaConsumer | None = None
        self._stopping = asyncio.Event()
        self.started = asyncio.Event()
        self.processed = 0
        self.dead_lettered = 0
        self.outages = 0  # consecutive transient failures: drives the backoff
        self.state = "starting"
        self.reason: str | None = None
        # A fan-out consumer's next offset per partition: no group keeps it, so a rebuilt consumer
        # (after a broker failure) goes on from here instead of skipping or repeating records.
        self._positions: dict[TopicPartition, int] = {}

    def status(self) -> dict[str, Any]:
        """For /health: `running`, or `waiting` / `starting` with the reason."""
        return {"status": self.state, "reason": self.reason, "topics": list(self.spec.topics),
                "group": self.spec.group, "processed": self.processed, "dead_lettered": self.dead_lettered}

    def _make_consumer(self) -> AIOKafkaConsumer:
        spec = self.spec
        return AIOKafkaConsumer(
            *spec.topics,
            bootstrap_servers=spec.bootstrap_servers,
            group_id=spec.group,
            enable_auto_commit=False,
            # A live fan-out consumer (no group) starts at the end; one this runner rebuilds goes on from
            # its own positions (`_place`), and from there an offset out of range means the broker lost
            # the log (a memory-only broker restarted): everything on the new one is news, so earliest.
            auto_offset_reset="earliest" if spec.from_beginning or self._positions else "latest",
            max_poll_records=spec.batch_size,
            fetch_max_wait_ms=spec.fetch_max_wait_ms,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            # A topic that appears later (created by its first producer, or again after a memory-only
            # broker restarted) is seen within this, not aiokafka's default five minutes.
            metadata_max_age_ms=METADATA_MAX_AGE_MS,
            **spec.extra,
        )

    def _backoff(self) -> float:
        """Exponential backoff with full jitter, so many consumers do not retry in step."""
        ceiling = min(self.max_backoff_s, self.retry_backoff_s * 2 ** min(self.outages, 20))
        return max(0.01, random.uniform(ceiling / 2, ceiling))  # noqa: S311 - backoff jitter, not a secret

    async def run(self) -> None:
        delay = 0.2
        while not self._stopping.is_set():
            consumer = self._make_consumer()
            try:
                await consumer.start()
            except (KafkaError, OSError) as exc:
                await consumer.stop()
                self.state, self.reason = "waiting", f"broker: {exc!r}"[:300]
                logger.warning("consumer {} cannot start ({!r}); retrying in {:.1f}s", self.spec.name, exc, delay)
                await self._sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if self.spec.group is None:
                await self._place(consumer)
            self.consumer = consumer
            self.started.set()
            self.state, self.reason = "running", None
            logger.info("consumer {} reading {} (group {})", self.spec.name, ",".join(self.spec.topics),
                        self.spec.group or "none: fan-out")
            try:
                await self._loop(consumer)
                delay = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broken connection: rebuild from the committed offsets
                self.state, self.reason = "waiting", f"broker: {exc!r}"[:300]
                logger.opt(exception=exc).error("consumer {} failed; restarting in {:.1f}s", self.spec.name, delay)
                await self._sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                self.consumer = None
                await consumer.stop()
        self.state, self.reason = "stopped", None

    async def _place(self, consumer: AIOKafkaConsumer) -> None:
        """Where a fan-out consumer starts: where `auto_offset_reset` puts it the first time (the end of a
        live stream), then where the previous consumer of this runner stopped."""
        assigned = consumer.assignment()
        if not self._positions:
            self._positions = {tp: await consumer.position(tp) for tp in assigned}
            return
        for tp in assigned:
            if tp in self._positions:
                consumer.seek(tp, self._positions[tp])

    async def _take_new_partitions(self, consumer: AIOKafkaConsumer,
                                   batches: dict[TopicPartition, list[ConsumerRecord]]
                                   ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """A partition a fan-out consumer is given after it was placed (the topic was created again, with
        more partitions, by a restarted memory-only broker) is news from its start: the live consumer's
        `latest` reset would skip what it holds already. So it is read from the beginning, and what this
        fetch brought from it is dropped (read again in order). Partitions of a topic that had none when
        the consumer was placed are its first ones, and are live from where they are."""
        new = [tp for tp in consumer.assignment() if tp not in self._positions]
        if not new:
            return batches
        if not self._positions:
            for tp in new:
                got = batches.get(tp)
                self._positions[tp] = got[0].offset if got else await consumer.position(tp)
            return batches
        logger.warning("consumer {}: new partitions {}; reading them from the beginning", self.spec.name,
                       ", ".join(f"{tp.topic}[{tp.partition}]" for tp in new))
        for tp in new:
            self._positions[tp] = 0
            consumer.seek(tp, 0)
        return {tp: records for tp, records in batches.items() if tp not in new}

    async def _rewind_lost_logs(self, consumer: AIOKafkaConsumer) -> None:
        """A fan-out consumer whose partition's log is now shorter than what it has read: the broker lost
        the log (a memory-only broker restarted) and every record on the new one is news, so read it from
        its beginning instead of waiting, silent, until the new log reaches the old offset."""
        lost = [tp for tp, position in self._positions.items()
                if (highwater := consumer.highwater(tp)) is not None and highwater < position]
        assigned = consumer.assignment()
        for tp in lost:
            logger.warning("consumer {}: {}[{}] ends at {} but was read to {}; the broker lost its log "
                           "(restarted?), reading it from the beginning", self.spec.name, tp.topic, tp.partition,
                           consumer.highwater(tp), self._positions[tp])
            self._positions[tp] = 0
            if tp in assigned:
                await consumer.seek_to_beginning(tp)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        spec = self.spec
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=250, max_records=spec.batch_size)
            if spec.group is None:
                batches = await self._take_new_partitions(consumer, batches)
            if spec.group is None and self._positions:
                await self._rewind_lost_logs(consumer)
            pending = list(batches.items())
            if spec.batch_handler is not None and len(pending) > 1 and await self._handle_together(consumer, pending):
                continue
            while pending:
                tp, records = pending[0]
                try:
                    await self._handle_partition(records)
                except _Retry as retry:
                    await self._pause_and_rewind(consumer, tp, retry, pending)
                    break
                pending.pop(0)
                await self._done(consumer, [(tp, records)])

    async def _done(self, consumer: AIOKafkaConsumer,
                    handled: list[tuple[TopicPartition, list[ConsumerRecord]]]) -> None:
        """Handled partitions' batches: back to running, offsets committed (in one request), lag gauged."""
        spec = self.spec
        self.outages = 0
        if self.state != "running":
            self.state, self.reason = "running", None
        if spec.group is not None:
            await consumer.commit({tp: records[-1].offset + 1 for tp, records in handled})
        else:
            for tp, records in handled:
                self._positions[tp] = records[-1].offset + 1
        for tp, records in handled:
            highwater = consumer.highwater(tp)
            if highwater is not None:
                CONSUMER_LAG.labels(tp.topic, spec.group or "-", str(tp.partition)).set(
                    max(highwater - records[-1].offset - 1, 0)
                )

    async def _handle_together(self, consumer: AIOKafkaConsumer,
                               pending: list[tuple[TopicPartition, list[ConsumerRecord]]]) -> bool:
        """Every partition's records of one fetch in one `batch_handler` call: one unit of work per
        fetch, not per partition (order within each partition is kept; across partitions there is none
        to keep). True when they are handled and committed, or paused for an outage with every
        partition rewound; False when the batch failed otherwise, for the caller to take partition
        by partition (and so record by record), where retries and dead letters find the one at fault."""
        spec, group = self.spec, self.spec.group or "-"
        records = [record for _, part in pending for record in part]
        try:
            failed = await self._try_batch(records)
        except _Retry as retry:  # raised for records[0]: every partition is rewound to its first record
            await self._pause_and_rewind(consumer, pending[0][0], retry, pending)
            return True
        if failed is not None:
            logger.warning("consumer {} could not handle {} records of {} partitions at once ({!r}); "
                           "handling them partition by partition", spec.name, len(records), len(pending), failed)
            return False
        self.processed += len(records)
        for tp, part in pending:
            CONSUMER_MESSAGES.labels(tp.topic, group, "processed").inc(len(part))
        await self._done(consumer, pending)
        return True

    async def _pause_and_rewind(self, consumer: AIOKafkaConsumer, tp: TopicPartition, retry: _Retry,
                                pending: list[tuple[TopicPartition, list[ConsumerRecord]]]) -> None:
        """An outage: commit what is done, seek every unfinished partition back to its first record not
        handled, pause them all, back off (still polling, so the group keeps us), then resume."""
        spec = self.spec
        failed = retry.record
        self.outages += 1
        delay = self._backoff()
        self.state = "waiting"
        first_line = (str(retry.exc).strip().splitlines() or [""])[0]
        self.reason = f"{type(retry.exc).__name__}: {first_line}"[:300]
        logger.warning("consumer {} paused {:.1f}s: {}[{}]@{} could not be handled ({}); it will be retried",
                       spec.name, delay, failed.topic, failed.partition, failed.offset, self.reason)
        CONSUMER_MESSAGES.labels(failed.topic, spec.group or "-", "retried").inc()
        if spec.group is not None and failed.offset > pending[0][1][0].offset:
            try:
                await consumer.commit({tp: failed.offset})
            except KafkaError as exc:  # not fatal: the records before it are idempotent
                logger.warning("consumer {} could not commit before pausing: {!r}", spec.name, exc)
        rewind = {tp: failed.offset}
        for other, records in pending[1:]:
            rewind[other] = records[0].offset
        assigned = consumer.assignment()
        for part, offset in rewind.items():
            if part in assigned:
                try:
                    consumer.seek(part, offset)
                except IllegalStateError:  # revoked meanwhile: its new owner starts from the commit
                    pass
        paused = list(consumer.assignment())
        consumer.pause(*paused)
        loop = asyncio.get_running_loop()
        until = loop.time() + delay
        try:
            while not self._stopping.is_set() and loop.time() < until:
                # Paused partitions return nothing; polling keeps our place in the group.
                got = await consumer.getmany(timeout_ms=int(max(10, min(250, (until - loop.time()) * 1000))))
                for part, records in got.items():  # assigned by a rebalance meanwhile: not paused
                    consumer.seek(part, records[0].offset)
                    consumer.pause(part)
                    paused.append(part)
        finally:
            current = consumer.assignment()
            consumer.resume(*[p for p in paused if p in current])

    async def _handle_partition(self, records: list[ConsumerRecord]) -> None:
        if self.spec.batch_handler is not None and len(records) > 1:
            await self._handle_batch(records)
        else:
            for record in records:
                await self._handle(record)

    async def _try_batch(self, records: list[ConsumerRecord]) -> Exception | None:
        """The batch handler on `records`: None when it took them, its error when it failed for a reason
        other than an outage; an outage raises _Retry (for the first record)."""
        if self.spec.batch_handler is None:
            raise AssertionError()
        try:
            await self.spec.batch_handler(records)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if classify(exc) == "transient":
                raise _Retry(records[0], exc) from exc
            return exc
        return None

    async def _handle_batch(self, records: list[ConsumerRecord]) -> None:
        spec, group = self.spec, self.spec.group or "-"
        failed = await self._try_batch(records)
        if failed is not None:
            logger.warning("consumer {} could not handle a batch of {} from {}[{}]@{} at once ({!r}); "
                           "handling them one by one", spec.name, len(records), records[0].topic,
                           records[0].partition, records[0].offset, failed)
            for record in records:
                await self._handle(record)
            return
        self.processed += len(records)
        CONSUMER_MESSAGES.labels(records[0].topic, group, "processed").inc(len(records))

    async def _handle(self, record: ConsumerRecord) -> None:
        spec, group = self.spec, self.spec.group or "-"
        attempt = 0
        while True:
            try:
                await spec.handler(record)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                kind = classify(exc)
                if kind == "poison":
                    await self._dead_letter(record, f"{type(exc).__name__}: {exc}")
                    return
                if kind == "transient":
                    raise _Retry(record, exc) from exc
                attempt += 1
                if attempt > self.max_retries:
                    logger.opt(exception=exc).error(
                        "consumer {} failed {} times on {}[{}]@{}; pausing and retrying (not dead-lettered)",
                        spec.name, attempt, record.topic, record.partition, record.offset,
                    )
                    raise _Retry(record, exc) from exc
                CONSUMER_MESSAGES.labels(record.topic, group, "retried").inc()
                logger.warning("consumer {} retry {}/{} for {}[{}]@{}: {!r}", spec.name, attempt,
                               self.max_retries, record.topic, record.partition, record.offset, exc)
                await asyncio.sleep(self.retry_backoff_s * 2 ** (attempt - 1))
            else:
                self.processed += 1
                CONSUMER_MESSAGES.labels(record.topic, group, "processed").inc()
                return

    async def _dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        group = self.spec.group or "-"
        if not self.spec.dlq or self.dlq_bus is None:
            self.dead_lettered += 1
            CONSUMER_MESSAGES.labels(record.topic, group, "dead_lettered").inc()
            logger.warning("consumer {} dropped {}[{}]@{} (no DLQ): {}", self.spec.name, record.topic,
                           record.partition, record.offset, reason)
            return
        headers = [
            ("x-dlq-reason", reason[:1000].encode()),
            ("x-original-topic", record.topic.encode()),
            ("x-original-partition", str(record.partition).encode()),
            ("x-original-offset", str(record.offset).encode()),
            ("x-original-timestamp", str(record.timestamp).encode()),
            ("x-consumer-group", group.encode()),
            ("x-failed-at", utcnow().isoformat().encode()),
        ]
        try:
            await self.dlq_bus.publish(f"{record.topic}.dlq", record.value or b"", key=record.key, headers=headers)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the DLQ is on a broker that is down: not committed, retried later
            raise _Retry(record, exc) from exc
        self.dead_lettered += 1
        CONSUMER_MESSAGES.labels(record.topic, group, "dead_lettered").inc()
        logger.warning("consumer {} sent {}[{}]@{} to {}.dlq: {}", self.spec.name, record.topic,
                       record.partition, record.offset, record.topic, reason)

    async def stop(self) -> None:
        """Finish the batch in hand, commit it, and leave the group."""
        self._stopping.set()
