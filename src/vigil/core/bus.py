"""Kafka / Redpanda messaging: one producer, the consumer runner every domain uses, and the outbox.

- `Bus` owns the app's producer; it connects in the background so the app starts while the broker is down.
- `ConsumerRunner` reads a topic with manual commits: a record's offset is committed only after its
  handler returned (the handler commits its own database work first). Transient errors are retried a
  bounded number of times; a record that cannot be handled goes to `<topic>.dlq` with the reason in
  headers, and the runner goes on.
- The outbox: `emit()` writes the event in the caller's transaction; `OutboxRelay` publishes committed
  rows and deletes them, so a broker outage delays events but never loses them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from loguru import logger
from pydantic import BaseModel, ValidationError
from sqlalchemy import BigInteger, Identity, String, delete, event, func, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, Session, mapped_column

from vigil.core.db import Base, session_scope, utcnow
from vigil.core.errors import ServiceUnavailable
from vigil.core.metrics import CONSUMER_LAG, CONSUMER_MESSAGES, OUTBOX_PENDING, OUTBOX_PUBLISHED

EVENTS_TOPIC = "vigil.events"


# --------------------------------------------------------------------------------------------
# Producer
# --------------------------------------------------------------------------------------------


class BrokerUnavailable(ServiceUnavailable):
    title = "Message broker unavailable"


class Bus:
    """One producer per broker address, started in the background and reconnected by aiokafka."""

    def __init__(self, bootstrap_servers: str | None, *, name: str = "kafka") -> None:
        self.bootstrap_servers = bootstrap_servers
        self.name = name
        self.producer: AIOKafkaProducer | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.bootstrap_servers)

    async def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._connect(), name=f"{self.name}-producer-connect")

    async def _connect(self) -> None:
        delay = 0.2
        while True:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap_servers,
                acks="all",
                linger_ms=2,
                request_timeout_ms=10_000,
                retry_backoff_ms=200,
            )
            try:
                await producer.start()
            except (KafkaError, OSError) as exc:
                await producer.stop()
                logger.warning("{} producer cannot reach {} yet ({!r}); retrying in {:.1f}s",
                               self.name, self.bootstrap_servers, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.producer = producer
            self._ready.set()
            logger.info("{} producer connected to {}", self.name, self.bootstrap_servers)
            return

    async def wait_ready(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None
        self._ready.clear()

    def _require(self) -> AIOKafkaProducer:
        if self.producer is None:
            raise BrokerUnavailable(f"The {self.name} broker is not connected.")
        return self.producer

    async def send(
        self, topic: str, value: bytes, *, key: bytes | None = None, headers: list[tuple[str, bytes]] | None = None
    ) -> asyncio.Future[Any]:
        """Queue one record; the returned future resolves when the broker acknowledged it."""
        return await self._require().send(topic, value=value, key=key, headers=headers)

    async def publish(
        self, topic: str, value: bytes, *, key: bytes | None = None, headers: list[tuple[str, bytes]] | None = None
    ) -> None:
        """Send one record and wait for the broker's acknowledgement."""
        await (await self.send(topic, value, key=key, headers=headers))

    async def ping(self, timeout: float) -> None:
        """Fetch cluster metadata: proves the broker answers now, not just that we once connected."""
        producer = self._require()
        await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout)


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, default=_json_default, separators=(",", ":")).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)


async def ensure_topics(bootstrap_servers: str, topics: dict[str, int], *, timeout_s: float = 10.0) -> None:
    """Create topics that do not exist yet (work topics need partitions to share out)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_s * 1000))
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        existing = set(await admin.list_topics())
        new = [NewTopic(name, n, 1) for name, n in topics.items() if name not in existing]
        if new:
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
            logger.info("created topics {}", ", ".join(t.name for t in new))
    finally:
        await admin.close()


# --------------------------------------------------------------------------------------------
# Consumers
# --------------------------------------------------------------------------------------------


class PoisonMessage(Exception):
    """A record that can never be handled (bad JSON, wrong schema): it goes to the DLQ at once."""


# Errors that say "this message is bad", as opposed to "something we need is down".
POISON_ERRORS: tuple[type[BaseException], ...] = (
    PoisonMessage, ValidationError, ValueError, UnicodeDecodeError, TypeError, KeyError,
)

Handler = Callable[[ConsumerRecord], Awaitable[None]]
BatchHandler = Callable[[list[ConsumerRecord]], Awaitable[None]]


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
    # whole time even when data arrives, so this bounds delivery latency; 50 ms costs ~20 fetches/s.
    fetch_max_wait_ms: int = 50
    dlq: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    # Optional: take a partition's whole batch in one call (one transaction for many small records).
    # It must be all or nothing; when it raises, the batch is handled again record by record with
    # `handler`, so retries and dead letters still apply to the one record at fault.
    batch_handler: BatchHandler | None = None


class ConsumerRunner:
    """Runs one ConsumerSpec until stopped: handle, retry, dead-letter, commit."""

    def __init__(self, spec: ConsumerSpec, dlq_bus: Bus | None, *, max_retries: int = 3,
                 retry_backoff_s: float = 0.2) -> None:
        self.spec = spec
        self.max_retries = spec.max_retries if spec.max_retries is not None else max_retries
        self.retry_backoff_s = spec.retry_backoff_s if spec.retry_backoff_s is not None else retry_backoff_s
        self.dlq_bus = dlq_bus
        self.consumer: AIOKafkaConsumer | None = None
        self._stopping = asyncio.Event()
        self.started = asyncio.Event()
        self.processed = 0
        self.dead_lettered = 0

    def _make_consumer(self) -> AIOKafkaConsumer:
        spec = self.spec
        return AIOKafkaConsumer(
            *spec.topics,
            bootstrap_servers=spec.bootstrap_servers,
            group_id=spec.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if spec.from_beginning else "latest",
            max_poll_records=spec.batch_size,
            fetch_max_wait_ms=spec.fetch_max_wait_ms,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            **spec.extra,
        )

    async def run(self) -> None:
        delay = 0.2
        while not self._stopping.is_set():
            consumer = self._make_consumer()
            try:
                await consumer.start()
            except (KafkaError, OSError) as exc:
                await consumer.stop()
                logger.warning("consumer {} cannot start ({!r}); retrying in {:.1f}s", self.spec.name, exc, delay)
                await self._sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.consumer = consumer
            self.started.set()
            logger.info("consumer {} reading {} (group {})", self.spec.name, ",".join(self.spec.topics),
                        self.spec.group or "none: fan-out")
            try:
                await self._loop(consumer)
                delay = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broken connection or DLQ outage: rebuild from the committed offsets
                logger.opt(exception=exc).error("consumer {} failed; restarting in {:.1f}s", self.spec.name, delay)
                await self._sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                self.consumer = None
                await consumer.stop()

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        spec = self.spec
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=250, max_records=spec.batch_size)
            for tp, records in batches.items():
                if spec.batch_handler is not None and len(records) > 1:
                    await self._handle_batch(records)
                else:
                    for record in records:
                        await self._handle(record)
                if spec.group is not None:
                    await consumer.commit({tp: records[-1].offset + 1})
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    CONSUMER_LAG.labels(tp.topic, spec.group or "-", str(tp.partition)).set(
                        max(highwater - records[-1].offset - 1, 0)
                    )

    async def _handle_batch(self, records: list[ConsumerRecord]) -> None:
        spec, group = self.spec, self.spec.group or "-"
        assert spec.batch_handler is not None
        try:
            await spec.batch_handler(records)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("consumer {} could not handle a batch of {} from {}[{}]@{} at once ({!r}); "
                           "handling them one by one", spec.name, len(records), records[0].topic,
                           records[0].partition, records[0].offset, exc)
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
            except POISON_ERRORS as exc:
                await self._dead_letter(record, f"{type(exc).__name__}: {exc}")
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                attempt += 1
                if attempt > self.max_retries:
                    logger.opt(exception=exc).error(
                        "consumer {} gave up on {}[{}]@{} after {} attempts",
                        spec.name, record.topic, record.partition, record.offset, attempt,
                    )
                    await self._dead_letter(record, f"failed after {attempt} attempts: {type(exc).__name__}: {exc}")
                    return
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
        self.dead_lettered += 1
        CONSUMER_MESSAGES.labels(record.topic, group, "dead_lettered").inc()
        logger.warning("consumer {} sent {}[{}]@{} to {}.dlq: {}", self.spec.name, record.topic,
                       record.partition, record.offset, record.topic, reason)
        if not self.spec.dlq or self.dlq_bus is None:
            return
        headers = [
            ("x-dlq-reason", reason[:1000].encode()),
            ("x-original-topic", record.topic.encode()),
            ("x-original-partition", str(record.partition).encode()),
            ("x-original-offset", str(record.offset).encode()),
            ("x-consumer-group", group.encode()),
            ("x-failed-at", utcnow().isoformat().encode()),
        ]
        # Raises if the broker is gone: the batch is then not committed and is read again later.
        await self.dlq_bus.publish(f"{record.topic}.dlq", record.value or b"", key=record.key, headers=headers)

    async def stop(self) -> None:
        """Finish the batch in hand, commit it, and leave the group."""
        self._stopping.set()


# --------------------------------------------------------------------------------------------
# Outbox
# --------------------------------------------------------------------------------------------


class OutboxEvent(Base):
    """An event written with a database change, published by the relay after commit."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    key: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)


def envelope(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    """The one message shape on `vigil.events` and every WebSocket: {type, data, ts}."""
    return {"type": type_, "data": data, "ts": utcnow().isoformat()}


def emit(
    session: AsyncSession, type_: str, data: dict[str, Any], *, key: str | None = None, topic: str = EVENTS_TOPIC
) -> None:
    """Announce an event once the caller's transaction commits (never before, never if it rolls back)."""
    enqueue(session, topic, envelope(type_, data), key=key)


def enqueue(session: AsyncSession, topic: str, payload: dict[str, Any], *, key: str | None = None) -> None:
    """Put a raw JSON message (a job, not an event) on a topic through the outbox."""
    session.add(OutboxEvent(topic=topic, key=key, payload=json.loads(dumps(payload))))
    session.info["outbox_dirty"] = True


_wakers: set[asyncio.Event] = set()
OUTBOX_CHANNEL = "vigil_outbox"


@event.listens_for(Session, "before_commit")
def _notify_other_processes(session: Session) -> None:
    # NOTIFY is transactional: relays in other processes (other instances, after a runner or a
    # consumer wrote) hear it only if this commit succeeds.
    if session.info.get("outbox_dirty"):
        session.execute(text(f"NOTIFY {OUTBOX_CHANNEL}"))


@event.listens_for(Session, "after_commit")
def _wake_relays(session: Session) -> None:
    if session.info.pop("outbox_dirty", False):
        for waker in _wakers:
            waker.set()


@event.listens_for(Session, "after_rollback")
def _forget_outbox(session: Session) -> None:
    session.info.pop("outbox_dirty", None)


class OutboxRelay:
    """Publishes committed outbox rows in id order; SKIP LOCKED lets several instances share the work."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], buses: dict[str, Bus], *,
                 poll_interval_s: float = 0.5, batch_size: int = 200, route: Callable[[str], str] | None = None) -> None:
        self.sessionmaker = sessionmaker
        self.buses = buses
        self.poll_interval_s = poll_interval_s
        self.batch_size = batch_size
        self.route = route or (lambda topic: "kafka")
        self._wake = asyncio.Event()
        self._stopping = False

    async def _listen(self) -> None:
        """Wake on NOTIFY from any process; polling stays as the fallback if this connection drops."""
        while not self._stopping:
            try:
                async with self.sessionmaker.kw["bind"].connect() as conn:
                    raw = (await conn.get_raw_connection()).driver_connection
                    await raw.add_listener(OUTBOX_CHANNEL, lambda *_: self._wake.set())
                    while not self._stopping and not raw.is_closed():
                        await asyncio.sleep(1)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.debug("outbox listener reconnecting: {!r}", exc)
                await asyncio.sleep(2)

    async def run(self) -> None:
        _wakers.add(self._wake)
        delay = 0.2
        last_gauge = 0.0
        loop = asyncio.get_running_loop()
        listener = asyncio.create_task(self._listen(), name="outbox-listen")
        try:
            while not self._stopping:
                self._wake.clear()  # before draining: a commit from now on wakes the next round
                try:
                    sent = await self.drain_once()
                    delay = 0.2
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    logger.warning("outbox relay cannot publish yet ({!r}); retrying in {:.1f}s", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                if loop.time() - last_gauge > 10:
                    last_gauge = loop.time()
                    await self._update_gauge()
                if sent >= self.batch_size:
                    continue  # more waiting: go again at once
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
                except TimeoutError:
                    pass
        finally:
            _wakers.discard(self._wake)
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    async def drain_once(self) -> int:
        """Publish one batch; rows are deleted only after the broker acknowledged all of them."""
        async with session_scope(self.sessionmaker) as session:
            rows = (await session.scalars(
                select(OutboxEvent).order_by(OutboxEvent.id).limit(self.batch_size).with_for_update(skip_locked=True)
            )).all()
            if not rows:
                return 0
            futures = []
            try:
                for row in rows:
                    bus = self.buses[self.route(row.topic)]
                    futures.append(await bus.send(row.topic, dumps(row.payload),
                                                  key=row.key.encode() if row.key else None))
                await asyncio.gather(*futures)
            except BaseException:
                for f in futures:
                    if not f.done():
                        f.cancel()
                raise
            await session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_([r.id for r in rows])))
            for row in rows:
                OUTBOX_PUBLISHED.labels(row.topic).inc()
            return len(rows)

    async def _update_gauge(self) -> None:
        try:
            async with self.sessionmaker() as session:
                OUTBOX_PENDING.set(await session.scalar(select(func.count()).select_from(OutboxEvent)) or 0)
        except Exception:  # the gauge is best effort; the relay loop reports real failures
            pass

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()


__all__ = [
    "EVENTS_TOPIC", "Bus", "BrokerUnavailable", "ConsumerRecord", "ConsumerRunner", "ConsumerSpec", "OutboxEvent",
    "OutboxRelay", "PoisonMessage", "emit", "enqueue", "ensure_topics", "envelope", "parse_json",
]
