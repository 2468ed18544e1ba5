"""The outbox: `emit()` writes the event in the caller's transaction; `OutboxRelay` publishes
committed rows and deletes them, so a broker outage delays events but never loses them.

Isolation: the relay publishes many rows per round but judges each row by its own result. A row the
broker refuses for good (too large, invalid topic, ...) is *parked* (status `parked`, with the reason)
and never blocks the rows behind it; a transient failure (broker down) leaves the row pending and the
relay retries it. `emit`/`enqueue` refuse an event bigger than `max_payload_bytes` up front (413), so
the request that would write it fails instead of a row that can never leave.

Order: one relay at a time publishes (a PostgreSQL advisory lock elects the leader among instances),
rows go out in id order and the producer keeps order per key, so order per subject holds with
several app instances.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import errors as kafka_errors
from loguru import logger
from sqlalchemy import (
    JSON,
    BigInteger,
    Identity,
    Index,
    String,
    Text,
    any_,
    bindparam,
    cast,
    delete,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, Session, mapped_column

from vigil.core.db import Base, session_scope, utcnow
from vigil.core.errors import PayloadTooLarge
from vigil.core.messaging.producer import EVENTS_TOPIC, Bus, RecordNotHeld, dumps
from vigil.core.metrics import OUTBOX_PARKED, OUTBOX_PENDING, OUTBOX_PUBLISHED

PENDING, PARKED = "pending", "parked"
# Below the broker's 1 MiB record limit, with room for the key, headers and batch overhead.
DEFAULT_MAX_PAYLOAD_BYTES = 900_000
_limits = {"max_payload_bytes": DEFAULT_MAX_PAYLOAD_BYTES}

# Errors with which the broker (or the producer, before sending) refuses a record for good: sending
# the same bytes again can never succeed. Everything else (connection lost, timeouts, leader moves,
# producer not connected) is transient and retried.
PERMANENT_PRODUCE_ERRORS: tuple[type[BaseException], ...] = (
    kafka_errors.MessageSizeTooLargeError,
    kafka_errors.RecordTooLargeError,
    kafka_errors.RecordListTooLargeError,
    kafka_errors.InvalidTopicError,
    kafka_errors.CorruptRecordException,
    kafka_errors.InvalidMessageError,
    kafka_errors.InvalidTimestampError,
    kafka_errors.UnsupportedForMessageFormatError,
    kafka_errors.TopicAuthorizationFailedError,
    kafka_errors.PolicyViolationError,
)


# One relay publishes at a time, across every instance sharing the database.
RELAY_LOCK_KEY = 0x76696769  # "vigi"


def set_max_payload_bytes(limit: int) -> None:
    """Set the largest event `emit`/`enqueue` accept (from Settings.outbox_max_payload_bytes at startup)."""
    _limits["max_payload_bytes"] = limit


def is_permanent(exc: BaseException) -> bool:
    """Does this produce error mean the broker will never take the record?"""
    return isinstance(exc, PERMANENT_PRODUCE_ERRORS)


class OutboxEvent(Base):
    """An event written with a database change, published by the relay after commit.

    `status` is `pending` until published (then the row is deleted) or `parked` when the broker
    refused it for good; a parked row keeps its reason and is listed by the admin API."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    key: Mapped[str | None] = mapped_column(String(200))
    # json, not jsonb: the text `emit` encoded is kept byte for byte and published as it is.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    status: Mapped[str] = mapped_column(String(16), server_default=PENDING, default=PENDING)
    reason: Mapped[str | None] = mapped_column(Text)
    parked_at: Mapped[datetime | None] = mapped_column()


def envelope(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    """The one message shape on `vigil.events` and every WebSocket: {type, data, ts}."""
    return {"type": type_, "data": data, "ts": utcnow().isoformat()}


def emit(
    session: AsyncSession, type_: str, data: dict[str, Any], *, key: str | None = None, topic: str = EVENTS_TOPIC
) -> None:
    """Announce an event once the caller's transaction commits (never before, never if it rolls back)."""
    enqueue(session, topic, envelope(type_, data), key=key)


def _largest_field(payload: dict[str, Any]) -> tuple[str | None, int]:
    """The top-level field (of `data` for an event envelope) that weighs most once encoded."""
    data = payload.get("data")
    fields: dict[str, Any] = data if isinstance(data, dict) else payload
    best, size = None, 0
    for name, value in fields.items():
        n = len(dumps(value))
        if n > size:
            best, size = str(name), n
    return best, size


def enqueue(session: AsyncSession, topic: str, payload: dict[str, Any], *, key: str | None = None) -> None:
    """Put a raw JSON message (a job, not an event) on a topic through the outbox.

    Raises PayloadTooLarge (413) when the message could never pass the broker, naming its biggest
    field, so the request that would write it is refused instead of parking the row later.

    The row is staged on the session and written when the unit of work commits (or by `write_staged`);
    a rollback drops it. A savepoint does not: an event staged inside a `begin_nested()` block that
    rolls back is still written, so emit after the savepoint, as every caller does."""
    raw = dumps(payload)
    limit = _limits["max_payload_bytes"]
    if len(raw) > limit:
        name, size = _largest_field(payload)
        detail = f"The event would be {len(raw)} bytes, over the {limit}-byte limit"
        detail += f"; its largest field is `{name}` ({size} bytes)." if name else "."
        errors = [{"loc": ["body", name], "msg": f"too large ({size} bytes)", "type": "too_large"}] if name else None
        raise PayloadTooLarge(detail, errors=errors, field=name, limit=limit)
    session.info.setdefault(_STAGED, []).append({"topic": topic, "key": key, "payload": raw.decode()})
    session.info["outbox_dirty"] = True


@dataclass(frozen=True)
class ParkedEvent:
    """What the relay tells `on_parked` about a row the broker refused for good."""

    id: int
    topic: str
    key: str | None
    event_type: str | None
    reason: str
    size: int


OnParked = Callable[[list[ParkedEvent]], Awaitable[None]]
# Called for each acknowledged row, in id order, as soon as the broker acknowledged its batch:
# (topic, partition, offset, payload). It must not block (the WebSocket hub takes it).
OnPublished = Callable[[str, int, int, str], Any]


_wakers: set[asyncio.Event] = set()
OUTBOX_CHANNEL = "vigil_outbox"


# Rows `enqueue` staged in this unit of work, written by one statement when it commits: no ORM object
# per event, the JSON text goes in as encoded (the relay publishes those same bytes), and the NOTIFY
# that wakes other processes' relays rides in the same round trip (it is delivered at commit).
_STAGED = "vigil.outbox.staged"
_INSERT_STAGED = text(
    "WITH staged AS (INSERT INTO outbox (topic, key, payload)"
    " SELECT topic, key, payload::json"
    " FROM unnest(:topics, :keys, :payloads) WITH ORDINALITY AS s(topic, key, payload, n) ORDER BY n"
    " RETURNING 1)"
    " SELECT pg_notify(:channel, '')"
).bindparams(bindparam("topics", type_=ARRAY(Text)), bindparam("keys", type_=ARRAY(Text)),
             bindparam("payloads", type_=ARRAY(Text)), bindparam("channel", OUTBOX_CHANNEL, type_=Text))
_PENDING_BATCH = (
    select(OutboxEvent.id, OutboxEvent.topic, OutboxEvent.key, cast(OutboxEvent.payload, Text).label("payload"))
    .where(OutboxEvent.status == PENDING).order_by(OutboxEvent.id).limit(bindparam("n"))
    .with_for_update(skip_locked=True)
)

# The rows the broker acknowledged, as one array parameter: one statement shape whatever the batch size (an
# expanding IN is rendered again for each), and no session synchronisation, which compiled an evaluator of
# the WHERE clause on every batch for a session that holds no OutboxEvent objects.
_DELETE_SENT = (
    delete(OutboxEvent).where(OutboxEvent.id == any_(bindparam("ids", type_=ARRAY(BigInteger))))
    .execution_options(synchronize_session=False)
)


def _write_staged(session: Session) -> bool:
    staged = session.info.pop(_STAGED, None)
    if not staged:
        return False
    session.execute(_INSERT_STAGED, {"topics": [r["topic"] for r in staged], "keys": [r["key"] for r in staged],
                                     "payloads": [r["payload"] for r in staged]})
    return True


async def write_staged(session: AsyncSession) -> None:
    """Write the events staged so far now, for a reader in the same transaction (commit writes them anyway)."""
    await session.run_sync(_write_staged)


@event.listens_for(Session, "before_commit")
def _write_staged_and_notify(session: Session) -> None:
    # NOTIFY is transactional: relays in other processes (other instances, after a runner or a
    # consumer wrote) hear it only if this commit succeeds.
    if not _write_staged(session) and session.info.get("outbox_dirty"):
        session.execute(text(f"NOTIFY {OUTBOX_CHANNEL}"))


@event.listens_for(Session, "after_commit")
def _wake_relays(session: Session) -> None:
    if session.info.pop("outbox_dirty", False):
        for waker in _wakers:
            waker.set()


@event.listens_for(Session, "after_rollback")
def _forget_outbox(session: Session) -> None:
    session.info.pop("outbox_dirty", None)
    session.info.pop(_STAGED, None)


def _event_type(payload: str) -> str | None:
    """The `type` of a stored event envelope, if it has one (a parked row's log line and alert)."""
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if isinstance(kind, str) else None


class OutboxRelay:
    """Publishes committed outbox rows in id order, one relay at a time across instances (advisory
    lock); each row is judged by its own produce result, so one refused row never blocks the rest."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], buses: dict[str, Bus], *,
                 poll_interval_s: float = 0.5, batch_size: int = 200, route: Callable[[str], str] | None = None,
                 on_parked: OnParked | None = None, on_published: OnPublished | None = None) -> None:
        self.sessionmaker = sessionmaker
        self.buses = buses
        self.poll_interval_s = poll_interval_s
        self.batch_size = batch_size
        self.route = route or (lambda topic: "kafka")
        self.on_parked = on_parked
        self.on_published = on_published
        self._wake = asyncio.Event()
        self._stopping = False
        self.parked = 0

    async def _listen(self) -> None:
        """Wake on NOTIFY from any process; polling stays as the fallback if this connection drops."""
        while not self._stopping:
            try:
                async with self.sessionmaker.kw["bind"].connect() as conn:
                    raw = (await conn.get_raw_connection()).driver_connection
                    await raw.add_listener(OUTBOX_CHANNEL, lambda *_: self._wake.set())
                    while not self._stopping and not raw.is_closed():  # noqa: ASYNC110 - no close event
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

    async def _publish(self, rows: Sequence[Any]) -> list[BaseException | None]:  # rows of _PENDING_BATCH
        """Send every row (the producer batches them per partition, in order) and return each row's
        outcome: None when acknowledged, else the error. A row's payload is its stored JSON text.
        Acknowledged rows go to `on_published` with where the broker put them."""
        outcomes: list[BaseException | asyncio.Future[Any] | None] = []
        for row in rows:
            try:
                bus = self.buses[self.route(row.topic)]
                outcomes.append(await bus.send(row.topic, row.payload.encode(),
                                               key=row.key.encode() if row.key else None))
            except asyncio.CancelledError:
                for o in outcomes:
                    if isinstance(o, asyncio.Future) and not o.done():
                        o.cancel()
                raise
            except Exception as exc:  # refused before sending (too large, not connected): this row only
                outcomes.append(exc)
        futures = [o for o in outcomes if isinstance(o, asyncio.Future)]
        if futures:
            await asyncio.gather(*futures, return_exceptions=True)
        results: list[BaseException | None] = []
        acked: dict[str, list[int]] = {}  # bus name -> indexes of the rows it acknowledged
        for i, (row, o) in enumerate(zip(rows, outcomes, strict=True)):
            if not isinstance(o, asyncio.Future):
                results.append(o)
                continue
            error = asyncio.CancelledError() if o.cancelled() else o.exception()
            results.append(error)
            if error is None:
                acked.setdefault(self.route(row.topic), []).append(i)
        for name, indexes in acked.items():
            # An acknowledgement that cannot be taken on trust is checked (see `Bus.held`); a record the
            # broker does not have stays pending and goes again next round.
            sent = [(outcomes[i].result(), rows[i].payload.encode()) for i in indexes]  # type: ignore[union-attr]
            for i, held in zip(indexes, await self.buses[name].held(sent), strict=True):
                if not held:
                    results[i] = RecordNotHeld(f"the broker acknowledged {rows[i].topic} row {rows[i].id} "
                                               "but does not have it")
        if self.on_published is not None:
            for row, o, error in zip(rows, outcomes, results, strict=True):
                if error is not None or not isinstance(o, asyncio.Future):
                    continue
                metadata = o.result()
                try:
                    self.on_published(row.topic, metadata.partition, metadata.offset, row.payload)
                except Exception as exc:  # the row is published either way; the consumer side still has it
                    logger.opt(exception=exc).error("outbox on_published hook failed")
        return results

    async def drain_once(self) -> int:
        """Publish one batch: acknowledged rows are deleted, refused ones parked, the rest kept for the
        next round. Returns how many rows left the pending queue; raises when none could (outage)."""
        parked: list[ParkedEvent] = []
        async with session_scope(self.sessionmaker) as session:
            if not await session.scalar(select(func.pg_try_advisory_xact_lock(RELAY_LOCK_KEY))):
                return 0  # another relay is publishing; it keeps the order
            rows = (await session.execute(_PENDING_BATCH, {"n": self.batch_size})).all()
            if not rows:
                return 0
            results = await self._publish(rows)
            refused = [i for i, r in enumerate(results) if r is not None and is_permanent(r)]
            if refused and len(rows) > 1:
                # The broker may refuse a whole batch for one record in it: try each refused row
                # alone before blaming it.
                for i in refused:
                    results[i] = (await self._publish([rows[i]]))[0]
            sent = [row.id for row, r in zip(rows, results, strict=True) if r is None]
            transient = [r for r in results if r is not None and not is_permanent(r)]
            if sent:
                await session.execute(_DELETE_SENT, {"ids": sent})
            now = utcnow()
            for row, r in zip(rows, results, strict=True):
                if r is None or not is_permanent(r):
                    continue
                reason = f"{type(r).__name__}: {r}"[:2000]
                await session.execute(update(OutboxEvent).where(OutboxEvent.id == row.id)
                                      .values(status=PARKED, reason=reason, parked_at=now))
                parked.append(ParkedEvent(id=row.id, topic=row.topic, key=row.key, event_type=_event_type(row.payload),
                                          reason=reason, size=len(row.payload.encode())))
        sent_ids = set(sent)
        for row in rows:
            if row.id in sent_ids:
                OUTBOX_PUBLISHED.labels(row.topic).inc()
        for p in parked:
            self.parked += 1
            OUTBOX_PARKED.labels(p.topic).inc()
            logger.error("outbox row {} ({} on {}, {} bytes) parked: {}", p.id, p.event_type, p.topic, p.size,
                         p.reason)
        if parked and self.on_parked is not None:
            try:
                await self.on_parked(parked)
            except Exception as exc:  # the row is parked and counted either way; the alert is a courtesy
                logger.opt(exception=exc).error("outbox on_parked hook failed")
        if transient and not sent and not parked:
            raise transient[0]
        return len(sent) + len(parked)

    async def _update_gauge(self) -> None:
        try:
            async with self.sessionmaker() as session:
                OUTBOX_PENDING.set(await session.scalar(
                    select(func.count()).select_from(OutboxEvent).where(OutboxEvent.status == PENDING)) or 0)
        except Exception:  # noqa: S110 - the gauge is best effort; the relay loop reports real failures
            pass

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
