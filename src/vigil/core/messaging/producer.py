"""The producer side: `Bus` owns one producer per broker, connected in the background so the app
starts while the broker is down; `ensure_topics` creates missing topics."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from loguru import logger
from pydantic import BaseModel

from vigil.core.errors import ServiceUnavailable

EVENTS_TOPIC = "vigil.events"


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
        """Send one record and wait for the broker's acknowledgement."""
        await (await self.send(topic, value, key=key, headers=headers))

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
