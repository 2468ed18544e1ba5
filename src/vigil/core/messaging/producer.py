"""The producer side: `Bus` owns one producer per broker, connected in the background so the app
starts while the broker is down; `ensure_topics` creates missing topics.

An acknowledgement is checked once per partition when it cannot be taken on trust (`Bus.held`): the
first one this producer gets for a partition, and any that goes back to an offset already acknowledged
(the broker lost that log). A restarted memory-only broker (the embedded Tansu) acknowledges records
for a topic it no longer has, to a producer that still has the old metadata, and keeps none of them.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, OffsetOutOfRangeError, TopicAlreadyExistsError
from loguru import logger
from pydantic import BaseModel

from vigil.core.errors import ServiceUnavailable

EVENTS_TOPIC = "vigil.events"


class BrokerUnavailable(ServiceUnavailable):
    title = "Message broker unavailable"


class RecordNotHeld(Exception):  # transient (not a PERMANENT_PRODUCE_ERRORS one): send the record again
    """The broker acknowledged the record, but its log does not hold it (it lost the topic)."""


class Bus:
    """One producer per broker address, started in the background and reconnected by aiokafka."""

    def __init__(self, bootstrap_servers: str | None, *, name: str = "kafka") -> None:
        self.bootstrap_servers = bootstrap_servers
        self.name = name
        self.producer: AIOKafkaProducer | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._acked: dict[TopicPartition, int] = {}  # the last offset per partition known to be on the broker
        self._checker: AIOKafkaConsumer | None = None  # reads records back for `held`; made when first needed
        self._checking = asyncio.Lock()  # one read-back at a time: the relay, dead letters and exporters share it

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

    async def wait_ready(self, timeout: float) -> bool:  # noqa: ASYNC109 - a bounded wait is the method's contract
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
        if self._checker is not None:
            await self._checker.stop()
            self._checker = None
        self._acked.clear()
        self._ready.clear()

    def _require(self) -> AIOKafkaProducer:
        if self.producer is None:
            raise BrokerUnavailable(f"The {self.name} broker is not connected.")
        return self.producer

    async def send(
        self, topic: str, value: bytes, *, key: bytes | None = None, headers: list[tuple[str, bytes]] | None = None
    ) -> asyncio.Future[Any]:
        """Queue one record; the returned future resolves when the broker acknowledged it."""
        future: asyncio.Future[Any] = await self._require().send(topic, value=value, key=key, headers=headers)
        return future

    async def publish(
        self, topic: str, value: bytes, *, key: bytes | None = None, headers: list[tuple[str, bytes]] | None = None
    ) -> None:
        """Send one record and wait until the broker has it: acknowledged, and checked as `held` says.
        Raises RecordNotHeld when the broker acknowledged it without keeping it (send it again)."""
        metadata = await (await self.send(topic, value, key=key, headers=headers))
        if not (await self.held([(metadata, value)]))[0]:
            raise RecordNotHeld(f"the broker acknowledged a record for {topic} but does not have it")

    async def held(self, acks: list[tuple[Any, bytes]], *, timeout_s: float = 5.0) -> list[bool]:
        """For each acknowledged record of one round, (`RecordMetadata`, value): is it really on the broker?

        Taken on trust when its partition was checked before and the offsets move on from the last one
        known to be there. Otherwise it is checked, for the round's records in that partition together:
        the topic must be listed by the broker, and the first of them must read back at its offset.
        (Tansu, restarted, keeps records for a topic it does not list, and drops them when the topic is
        created again; its end offsets are not to be trusted either.) What cannot be checked in `timeout_s`
        counts as not there, and the caller sends it again: at least once beats lost. A record not there
        makes the producer fetch metadata again: it was writing to a topic the broker did not have."""
        first: dict[TopicPartition, tuple[int, bytes]] = {}
        for ack, value in acks:
            first.setdefault(ack.topic_partition, (ack.offset, value))
        doubtful = {tp: at for tp, at in first.items() if tp not in self._acked or at[0] <= self._acked[tp]}
        there: set[TopicPartition] = set()
        if doubtful:
            try:
                async with self._checking:
                    there = await asyncio.wait_for(self._read_back(doubtful), timeout_s)
            except (KafkaError, OSError, TimeoutError) as exc:
                logger.warning("{}: cannot check {} acknowledged partitions ({!r}); sending their records again",
                               self.name, len(doubtful), exc)
        if missing := [tp for tp in doubtful if tp not in there]:
            for tp in missing:
                self._acked.pop(tp, None)
            logger.warning("{}: acknowledged records not found on the broker ({}); it lost its topics (restarted?). "
                           "Fetching metadata again; they will be sent again", self.name,
                           ", ".join(f"{tp.topic}[{tp.partition}]@{doubtful[tp][0]}" for tp in missing))
            if self.producer is not None:
                self.producer.client.force_metadata_update()
        answers = [ack.topic_partition not in missing for ack, _ in acks]
        for (ack, _), ok in zip(acks, answers, strict=True):
            if ok and ack.offset > self._acked.get(ack.topic_partition, -1):
                self._acked[ack.topic_partition] = ack.offset
        return answers

    async def _read_back(self, records: dict[TopicPartition, tuple[int, bytes]],
                         wait_s: float = 2.0) -> set[TopicPartition]:
        """The partitions whose given record (offset, value) reads back, in a topic the broker lists."""
        if self._checker is None:
            checker = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False,
                                       auto_offset_reset="none", request_timeout_ms=5_000, fetch_max_wait_ms=50)
            try:
                await checker.start()
            except BaseException:
                await checker.stop()
                raise
            self._checker = checker
        checker = self._checker
        listed = await checker.topics()  # the whole list: asking for one topic may create it
        wanted = {tp: at for tp, at in records.items() if tp.topic in listed}
        found: set[TopicPartition] = set()
        if not wanted:
            return found
        checker.assign(list(wanted))
        for tp, (offset, _) in wanted.items():
            checker.seek(tp, offset)
        open_ = set(wanted)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while open_ and loop.time() < deadline:
            try:
                fetched = await checker.getmany(*open_, timeout_ms=100)
            except OffsetOutOfRangeError as exc:  # the log no longer reaches that far: not there
                gone = set(exc.args[0]) if exc.args and isinstance(exc.args[0], dict) else set(open_)
                open_ -= gone
                checker.pause(*gone)
                continue
            for tp, got in fetched.items():
                if tp in open_ and got:
                    offset, value = wanted[tp]
                    if got[0].offset == offset and got[0].value == value:
                        found.add(tp)
                    open_.discard(tp)
                    checker.pause(tp)
        return found

    async def ping(self, timeout: float) -> None:  # noqa: ASYNC109 - health checks need a bounded ping
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
