"""Messaging core on a real broker: outbox survives a broker outage; poison goes to the DLQ."""

import asyncio
import json
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from pydantic import BaseModel
from sqlalchemy import func, select

from vigil.core.db import session_scope
from vigil.core.devstack import ServiceProcess, broker_argv, free_port, port_open
from vigil.core.messaging import (
    Bus,
    ConsumerRunner,
    ConsumerSpec,
    OutboxEvent,
    OutboxRelay,
    RecordNotHeld,
    emit,
    ensure_topics,
    parse_json,
)


async def read_all(bootstrap: str, topic: str, expected: int, timeout: float = 15.0) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    records = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(records) < expected and loop.time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def test_outbox_delivers_after_broker_comes_back(sessionmaker, data_dir):
    port = free_port()
    broker = ServiceProcess("broker-outage", broker_argv(port), port, data_dir / "logs" / "broker-outage.log")
    bootstrap = f"127.0.0.1:{port}"
    bus = Bus(bootstrap, name="outage-test")
    relay = OutboxRelay(sessionmaker, {"kafka": bus}, poll_interval_s=0.1)
    relay_task = asyncio.create_task(relay.run())
    await bus.start()  # the broker is not up: the producer keeps trying in the background
    try:
        # Events written while the broker is down stay in the outbox.
        async with session_scope(sessionmaker) as session:
            for i in range(5):
                emit(session, "test.outage", {"n": i}, key="k", topic="outage.events")
        # A rolled-back transaction announces nothing.
        with pytest.raises(RuntimeError):
            async with session_scope(sessionmaker) as session:
                emit(session, "test.outage", {"n": 99}, key="k", topic="outage.events")
                raise RuntimeError("rollback")
        await asyncio.sleep(1.0)
        async with sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(OutboxEvent)) == 5
        broker.start()
        assert port_open(port)
        records = await read_all(bootstrap, "outage.events", 5)
        assert [json.loads(r.value)["data"]["n"] for r in records] == [0, 1, 2, 3, 4]
        assert all(json.loads(r.value)["type"] == "test.outage" for r in records)
        for _ in range(50):
            async with sessionmaker() as session:
                if await session.scalar(select(func.count()).select_from(OutboxEvent)) == 0:
                    break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("outbox rows were not deleted after publishing")
    finally:
        relay.stop()
        await asyncio.wait_for(relay_task, 15)
        await bus.stop()
        broker.stop()


async def outbox_rows(sessionmaker) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(OutboxEvent)) or 0


async def test_outbox_sends_again_what_a_restarted_broker_acknowledged_without_keeping(sessionmaker, data_dir):
    """The embedded broker keeps its log in memory. Restarted, it acknowledges records for the topic it
    lost to a producer that still has the old metadata, and keeps none of them: the relay must see that
    the partition's log does not hold what was acknowledged, and send those rows again."""
    port = free_port()
    broker = ServiceProcess("broker-restart", broker_argv(port), port, data_dir / "logs" / "broker-restart.log",
                            stop_timeout=1.0)
    bootstrap, topic = f"127.0.0.1:{port}", f"restart.{uuid.uuid4().hex[:6]}"
    broker.start()
    await ensure_topics(bootstrap, {topic: 3})
    bus = Bus(bootstrap, name="restart-test")
    await bus.start()
    assert await bus.wait_ready(20)
    relay = OutboxRelay(sessionmaker, {"kafka": bus}, poll_interval_s=0.1)
    relay_task = asyncio.create_task(relay.run())

    async def emit_and_drain(numbers: range) -> None:
        async with session_scope(sessionmaker) as session:
            for n in numbers:
                emit(session, "test.restart", {"n": n}, key="k", topic=topic)
        for _ in range(300):
            if await outbox_rows(sessionmaker) == 0:
                return
            await asyncio.sleep(0.1)
        pytest.fail("the relay did not empty the outbox")

    try:
        await emit_and_drain(range(3))
        assert [json.loads(r.value)["data"]["n"] for r in await read_all(bootstrap, topic, 3)] == [0, 1, 2]
        # Restarted between two rounds: the producer saw no failure and still has the old metadata.
        await asyncio.to_thread(broker.stop)
        await asyncio.to_thread(broker.start)
        await emit_and_drain(range(3, 8))
        records = await read_all(bootstrap, topic, 5)
        await asyncio.sleep(0.5)  # and nothing more arrives: each row once
        records += await read_all_after(bootstrap, topic, records)
        assert [json.loads(r.value)["data"]["n"] for r in records] == [3, 4, 5, 6, 7], "each row once, in order"
    finally:
        relay.stop()
        await asyncio.wait_for(relay_task, 15)
        await bus.stop()
        broker.stop()


async def test_a_record_published_after_a_broker_restart_is_on_the_broker_when_publish_returns(data_dir):
    """`Bus.publish` (dead letters, the Kafka exporter) returns only once the broker has the record: a
    restarted memory-only broker's acknowledgement for a topic it lost raises RecordNotHeld, and the caller's
    retry puts the record on the new topic."""
    port = free_port()
    broker = ServiceProcess("broker-publish", broker_argv(port), port, data_dir / "logs" / "broker-publish.log",
                            stop_timeout=1.0)
    bootstrap, topic = f"127.0.0.1:{port}", f"publish.{uuid.uuid4().hex[:6]}"
    broker.start()
    await ensure_topics(bootstrap, {topic: 3})
    bus = Bus(bootstrap, name="publish-test")
    await bus.start()
    try:
        assert await bus.wait_ready(20)
        await bus.publish(topic, b"before", key=b"k")
        await asyncio.to_thread(broker.stop)
        await asyncio.to_thread(broker.start)
        refused = 0
        for _ in range(50):  # the caller's retry (the consumer's DLQ step, the exporter's backoff)
            try:
                await bus.publish(topic, b"after", key=b"k")
                break
            except (RecordNotHeld, KafkaError):
                refused += 1
                await asyncio.sleep(0.2)
        else:
            pytest.fail("publish never succeeded after the restart")
        values = [r.value for r in await read_all(bootstrap, topic, 1)]
        assert values.count(b"after") == 1, (values, refused)
    finally:
        await bus.stop()
        broker.stop()


async def read_all_after(bootstrap: str, topic: str, seen: list) -> list:
    """What the topic holds beyond the records already read (a second read from the start)."""
    again = await read_all(bootstrap, topic, len(seen) + 1, timeout=1.0)
    return again[len(seen):]


class Reading(BaseModel):
    sensor: str
    value: float


async def test_poison_message_goes_to_dlq_and_consumer_goes_on(stack):
    bootstrap = stack.settings.kafka_bootstrap_servers
    topic = f"readings-{uuid.uuid4().hex[:6]}"
    group = f"g-{uuid.uuid4().hex[:6]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    bus = Bus(bootstrap, name="dlq-test")
    await bus.start()
    assert await bus.wait_ready(10)
    handled: list[Reading] = []
    flaky_calls = {"n": 0}

    async def handler(record):
        reading = parse_json(record, Reading)
        if reading.sensor == "flaky" and flaky_calls["n"] < 2:
            flaky_calls["n"] += 1
            raise ConnectionError("database blinked")  # transient: retried, then succeeds
        handled.append(reading)

    spec = ConsumerSpec(name="t", topics=[topic], handler=handler, group=group, bootstrap_servers=bootstrap,
                        max_retries=3, retry_backoff_s=0.01)
    runner = ConsumerRunner(spec, bus)
    try:
        for value in (b'{"sensor": "a", "value": 1}', b"not json", b'{"sensor": "b"}', b"[1, 2]",
                      b'{"sensor": "flaky", "value": 2}', b'{"sensor": "c", "value": 3}'):
            await producer.send_and_wait(topic, value, key=b"same-key")
        task = asyncio.create_task(runner.run())
        for _ in range(200):
            if len(handled) == 3:
                break
            await asyncio.sleep(0.05)
        assert [r.sensor for r in handled] == ["a", "flaky", "c"]
        assert flaky_calls["n"] == 2
        dead = await read_all(bootstrap, f"{topic}.dlq", 3)
        assert [r.value for r in dead] == [b"not json", b'{"sensor": "b"}', b"[1, 2]"]
        reasons = [dict(r.headers)["x-dlq-reason"].decode() for r in dead]
        assert "not JSON" in reasons[0] and "value" in reasons[1] and "object" in reasons[2]
        assert all(dict(r.headers)["x-original-topic"].decode() == topic for r in dead)
        await runner.stop()
        await asyncio.wait_for(task, 15)
        # Offsets were committed after the work: a new member of the group reads nothing again.
        check = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                 auto_offset_reset="earliest")
        await check.start()
        try:
            again = await check.getmany(timeout_ms=1500)
            assert sum(len(v) for v in again.values()) == 0
        finally:
            await check.stop()
    finally:
        await producer.stop()
        await bus.stop()


async def test_batch_handler_takes_whole_batches_and_falls_back_to_records(stack):
    """A spec with a batch handler gets a partition's batch in one call; a batch it cannot take is
    handled again record by record, so only the bad record goes to the DLQ."""
    bootstrap = stack.settings.kafka_bootstrap_servers
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    bus = Bus(bootstrap, name="batch-test")
    await bus.start()
    assert await bus.wait_ready(10)

    async def run(values: list[bytes], expected: int):
        topic = f"batched-{uuid.uuid4().hex[:6]}"
        handled: list[str] = []
        attempts: list[int] = []

        async def handler(record):
            handled.append(parse_json(record, Reading).sensor)

        async def batch_handler(records):
            attempts.append(len(records))
            readings = [parse_json(r, Reading) for r in records]  # all or nothing
            handled.extend(r.sensor for r in readings)

        for value in values:  # all on the topic before the consumer starts: its first fetch gets them all
            await producer.send_and_wait(topic, value, key=b"k")
        spec = ConsumerSpec(name="b", topics=[topic], handler=handler, batch_handler=batch_handler,
                            group=None, bootstrap_servers=bootstrap, retry_backoff_s=0.01)
        runner = ConsumerRunner(spec, bus)
        task = asyncio.create_task(runner.run())
        try:
            for _ in range(200):
                if len(handled) == expected:
                    break
                await asyncio.sleep(0.05)
        finally:
            await runner.stop()
            await asyncio.wait_for(task, 15)
        return topic, handled, attempts, runner

    try:
        good = [f'{{"sensor": "s{i}", "value": {i}}}'.encode() for i in range(5)]
        _, handled, attempts, runner = await run(good, 5)
        assert handled == [f"s{i}" for i in range(5)] and attempts == [5] and runner.processed == 5

        topic, handled, attempts, runner = await run([good[0], b"not json", good[1]], 2)
        assert attempts == [3], "the batch was tried whole first"
        assert handled == ["s0", "s1"] and runner.processed == 2 and runner.dead_lettered == 1
        dead = await read_all(bootstrap, f"{topic}.dlq", 1)
        assert [r.value for r in dead] == [b"not json"]
    finally:
        await producer.stop()
        await bus.stop()


async def test_a_fetch_over_several_partitions_is_one_batch_and_each_failure_stays_its_own(stack):
    """The records of all partitions of one fetch go to the batch handler in one call (each partition's
    in order) and are committed together. A poison record among them: the partitions are tried one by
    one, then that partition's records one by one, so only it is dead-lettered. An outage during the
    joint batch: every partition is rewound and handled once, none dead-lettered."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from sqlalchemy.exc import OperationalError

    bootstrap = stack.settings.kafka_bootstrap_servers
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    bus = Bus(bootstrap, name="partitions-test")
    await bus.start()
    assert await bus.wait_ready(10)

    async def run(values: dict[int, list[bytes]], expected: int, *, outage: bool = False):
        topic, group = f"parts-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
        await admin.create_topics([NewTopic(topic, 3, 1)])
        handled: list[str] = []
        calls: list[list[str]] = []
        down = {"left": 1 if outage else 0}

        async def handler(record):
            handled.append(parse_json(record, Reading).sensor)

        async def batch_handler(records):
            calls.append([f"{r.partition}:{r.offset}" for r in records])
            if down["left"]:
                down["left"] -= 1
                raise OperationalError("INSERT ...", {}, ConnectionRefusedError("connection refused"))
            readings = [parse_json(r, Reading) for r in records]  # all or nothing
            handled.extend(r.sensor for r in readings)

        for partition, part_values in values.items():  # all there before the first fetch
            for value in part_values:
                await producer.send_and_wait(topic, value, partition=partition)
        spec = ConsumerSpec(name="p", topics=[topic], handler=handler, batch_handler=batch_handler,
                            group=group, bootstrap_servers=bootstrap, retry_backoff_s=0.01)
        runner = ConsumerRunner(spec, bus, max_backoff_s=0.05)
        task = asyncio.create_task(runner.run())
        try:
            for _ in range(600):  # joining a new group takes a few seconds on the embedded broker
                if len(handled) + runner.dead_lettered >= expected:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # anything handled twice would be by now
        finally:
            await runner.stop()
            await asyncio.wait_for(task, 15)
        return topic, handled, calls, runner, await committed_offsets(bootstrap, topic, group)

    def reading(name: str) -> bytes:
        return json.dumps({"sensor": name, "value": 1}).encode()

    try:
        good = {p: [reading(f"p{p}-{i}") for i in range(3)] for p in range(3)}
        _, handled, calls, runner, committed = await run(good, 9)
        assert len(calls) == 1 and len(calls[0]) == 9, calls
        for p in range(3):  # every partition's records in order, each once
            assert [h for h in handled if h.startswith(f"p{p}-")] == [f"p{p}-{i}" for i in range(3)]
        assert len(handled) == 9 and runner.processed == 9 and committed == {0: 3, 1: 3, 2: 3}

        bad = {0: good[0], 1: [good[1][0], b"not json", good[1][1]], 2: good[2]}
        topic, handled, calls, runner, committed = await run(bad, 9)
        assert len(calls[0]) == 9, "the joint batch was tried first"
        assert sorted(handled) == sorted([*good_names(good, 0), "p1-0", "p1-1", *good_names(good, 2)])
        assert runner.dead_lettered == 1 and runner.processed == 8 and committed == {0: 3, 1: 3, 2: 3}
        assert [r.value for r in await read_all(bootstrap, f"{topic}.dlq", 1)] == [b"not json"]

        topic, handled, calls, runner, committed = await run(good, 9, outage=True)
        assert len(calls) >= 2 and len(calls[0]) == 9, calls
        assert sorted(handled) == sorted(n for p in range(3) for n in good_names(good, p))
        assert runner.dead_lettered == 0 and committed == {0: 3, 1: 3, 2: 3}
        assert await read_all(bootstrap, f"{topic}.dlq", 1, timeout=1.5) == []
    finally:
        await producer.stop()
        await admin.close()
        await bus.stop()


async def committed_offsets(bootstrap: str, topic: str, group: str) -> dict[int, int | None]:
    from aiokafka import TopicPartition

    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await reader.start()
    try:
        return {p: await reader.committed(TopicPartition(topic, p)) for p in range(3)}
    finally:
        await reader.stop()


def good_names(values: dict[int, list[bytes]], partition: int) -> list[str]:
    return [json.loads(v)["sensor"] for v in values[partition]]


class LiveFanOut:
    """A live fan-out ConsumerRunner (no group, not from the beginning) on one topic, and what it heard."""

    def __init__(self, bootstrap: str, topic: str, name: str) -> None:
        self.heard: list[str] = []

        async def handler(record):
            self.heard.append(record.value.decode())

        self.runner = ConsumerRunner(ConsumerSpec(name=name, topics=[topic], handler=handler, group=None,
                                                  bootstrap_servers=bootstrap, from_beginning=False, dlq=False), None)
        self.task = asyncio.create_task(self.runner.run())

    async def until(self, n: int, timeout: float = 15.0) -> None:
        """Until it heard `n` records (or the timeout: the caller's assertion says what is missing)."""
        for _ in range(int(timeout / 0.05)):
            if len(self.heard) >= n:
                return
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        await self.runner.stop()
        await asyncio.wait_for(self.task, 15)


async def test_a_live_fan_out_consumer_starts_at_the_end_and_goes_on_where_it_stopped(stack):
    """A fan-out consumer (no group, not from the beginning) hears only what comes after it started,
    although it resets to the earliest offset (for a log the broker lost); a consumer it rebuilds after
    a failure goes on from its last record, neither skipping nor repeating."""
    bootstrap = stack.settings.kafka_bootstrap_servers
    topic = f"live-{uuid.uuid4().hex[:6]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    for i in range(5):  # history the live stream must not replay
        await producer.send_and_wait(topic, f"old{i}".encode(), key=b"k")
    live = LiveFanOut(bootstrap, topic, "live")
    runner, heard, until = live.runner, live.heard, live.until

    try:
        await asyncio.wait_for(runner.started.wait(), 20)
        for i in range(3):
            await producer.send_and_wait(topic, f"new{i}".encode(), key=b"k")
        await until(3)
        assert heard == ["new0", "new1", "new2"]
        # The consumer breaks (as on a broker failure); the runner builds another one.
        consumer = runner.consumer
        assert consumer is not None
        runner.started.clear()
        await consumer.stop()
        await producer.send_and_wait(topic, b"new3", key=b"k")  # while there is no consumer
        await asyncio.wait_for(runner.started.wait(), 20)
        await producer.send_and_wait(topic, b"new4", key=b"k")
        await until(5)
        await asyncio.sleep(0.3)
        assert heard == [f"new{i}" for i in range(5)], "nothing skipped or repeated across the rebuild"
    finally:
        await live.stop()
        await producer.stop()


async def test_a_live_fan_out_consumer_reads_partitions_that_appear_later_from_their_start(stack):
    """A restarted memory-only broker creates a topic again, here with more partitions than before: what
    lands in a partition the live consumer had not been given is news, read from the partition's start, not
    skipped by the live consumer's reset to the end."""
    bootstrap = stack.settings.kafka_bootstrap_servers
    topic = f"grow-{uuid.uuid4().hex[:6]}"
    await ensure_topics(bootstrap, {topic: 1})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    live = LiveFanOut(bootstrap, topic, "grow")
    runner, heard, until = live.runner, live.heard, live.until

    try:
        await asyncio.wait_for(runner.started.wait(), 20)
        await producer.send_and_wait(topic, b"a0", partition=0)
        await until(1)
        assert heard == ["a0"]
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()
        await ensure_topics(bootstrap, {topic: 3})
        await producer.client.force_metadata_update()
        for p in (1, 2):  # before the consumer is given these partitions
            await producer.send_and_wait(topic, f"b{p}".encode(), partition=p)
        await until(3)
        await asyncio.sleep(0.3)
        assert sorted(heard[1:]) == ["b1", "b2"], heard
    finally:
        await live.stop()
        await producer.stop()


async def test_dead_letters_go_back_to_the_broker_the_record_came_from(base_settings, data_dir):
    """With a separate Redpanda, a poison observation lands in observations.dlq there, not on Kafka."""
    from pydantic import SecretStr

    from tests.conftest import ADMIN_KEY, start_server, stop_server

    port = free_port()
    redpanda = ServiceProcess("redpanda-2", broker_argv(port), port, data_dir / "logs" / "redpanda-2.log")
    redpanda.start()
    settings = base_settings.model_copy(update={
        "redpanda_brokers": f"127.0.0.1:{port}", "port": free_port(), "data_dir": data_dir / "app-rp",
        "qdrant_path": data_dir / "app-rp" / "qdrant", "admin_key": SecretStr(ADMIN_KEY),
    })
    server, task = await start_server(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.redpanda_brokers)
    await producer.start()
    try:
        await producer.send_and_wait("observations", b"not json", key=b"tag-x")
        dead = await read_all(settings.redpanda_brokers, "observations.dlq", 1)
        assert [r.value for r in dead] == [b"not json"]
    finally:
        await producer.stop()
        await stop_server(server, task)
        redpanda.stop()
