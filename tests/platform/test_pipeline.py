"""Pipeline isolation on the real services: a refused outbox row is parked and never blocks the rest;
an outage pauses a consumer instead of dead-lettering; dead letters are listed and replayed once."""

import asyncio
import json
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from tests.conftest import auth
from tests.platform.test_bus import read_all
from vigil.core.db import session_scope
from vigil.core.errors import PayloadTooLarge
from vigil.core.messaging import Bus, ConsumerRunner, ConsumerSpec, OutboxEvent, OutboxRelay, emit, parse_json
from vigil.core.messaging.consumer import classify
from vigil.people.consumers import TOPIC as REID_TOPIC


def parked_total(topic: str) -> float:
    return REGISTRY.get_sample_value("vigil_outbox_parked_total", {"topic": topic}) or 0.0


async def test_a_row_the_broker_refuses_is_parked_and_never_blocks_the_rest(stack, sessionmaker):
    bootstrap = stack.settings.kafka_bootstrap_servers
    topic = f"iso-{uuid.uuid4().hex[:6]}"
    bus = Bus(bootstrap, name="iso-test")
    await bus.start()
    assert await bus.wait_ready(10)
    told: list = []

    async def on_parked(parked):
        told.extend(parked)

    relay = OutboxRelay(sessionmaker, {"kafka": bus}, poll_interval_s=0.1, on_parked=on_parked)
    before = parked_total(topic)
    try:
        async with session_scope(sessionmaker) as session:
            for i in range(3):
                emit(session, "test.iso", {"n": i}, key="k", topic=topic)
            # Written past the emit guard (an old row, or another writer): 1.2 MB, over the broker's limit.
            session.add(OutboxEvent(topic=topic, key="k", payload={"type": "test.iso", "data": {
                "n": 3, "tpms": "x" * 1_200_000}}))
            await session.flush()
            for i in range(4, 7):
                emit(session, "test.iso", {"n": i}, key="k", topic=topic)
        task = asyncio.create_task(relay.run())
        records = await read_all(bootstrap, topic, 6)
        assert [json.loads(r.value)["data"]["n"] for r in records] == [0, 1, 2, 4, 5, 6]
        for _ in range(50):
            if told:
                break
            await asyncio.sleep(0.1)
        async with sessionmaker() as session:
            rows = (await session.scalars(select(OutboxEvent).where(OutboxEvent.topic == topic))).all()
        assert len(rows) == 1, "published rows are deleted, the refused one stays"
        row = rows[0]
        assert row.status == "parked" and row.parked_at is not None
        assert "TooLarge" in (row.reason or ""), row.reason
        assert parked_total(topic) == before + 1
        assert [(p.id, p.event_type) for p in told] == [(row.id, "test.iso")]
        # Later events keep flowing; the parked row is not retried.
        async with session_scope(sessionmaker) as session:
            emit(session, "test.iso", {"n": 7}, key="k", topic=topic)
        records = await read_all(bootstrap, topic, 7)
        assert [json.loads(r.value)["data"]["n"] for r in records] == [0, 1, 2, 4, 5, 6, 7]
        assert parked_total(topic) == before + 1 and len(told) == 1
        relay.stop()
        await asyncio.wait_for(task, 15)
    finally:
        relay.stop()
        await bus.stop()
        async with session_scope(sessionmaker) as session:
            await session.execute(OutboxEvent.__table__.delete().where(OutboxEvent.topic == topic))


async def test_a_commit_wakes_a_relay_in_another_process_through_the_staged_insert(stack, sessionmaker):
    """The NOTIFY that wakes other processes' relays rides in the statement that writes the staged
    events. The relay here polls once a minute and its in-process wake-up is taken away, so only that
    NOTIFY can make it publish within seconds; the events go out in emit order."""
    from sqlalchemy import text

    from vigil.core.messaging import outbox

    bootstrap = stack.settings.kafka_bootstrap_servers
    topic = f"notify-{uuid.uuid4().hex[:6]}"
    bus = Bus(bootstrap, name="notify-test")
    await bus.start()
    relay = OutboxRelay(sessionmaker, {"kafka": bus}, poll_interval_s=60)
    task = asyncio.create_task(relay.run())
    try:
        async with sessionmaker() as session:
            for _ in range(200):  # the relay is registered and its LISTEN connection is up
                listening = await session.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%vigil_outbox%'"))
                if relay._wake in outbox._wakers and listening:
                    break
                await asyncio.sleep(0.05)
        outbox._wakers.discard(relay._wake)  # as if the commit happened in another process
        await asyncio.sleep(0.3)  # past its first, empty round
        async with session_scope(sessionmaker) as session:
            for i in range(5):
                emit(session, "test.notify", {"n": i}, key="k", topic=topic)
        records = await read_all(bootstrap, topic, 5, timeout=10)
        assert [json.loads(r.value)["data"]["n"] for r in records] == [0, 1, 2, 3, 4]
    finally:
        relay.stop()
        await asyncio.wait_for(task, 15)
        await bus.stop()


async def test_emit_refuses_an_event_the_broker_could_never_take(sessionmaker):
    with pytest.raises(PayloadTooLarge) as info:
        async with session_scope(sessionmaker) as session:
            emit(session, "plate.detected", {"plate": "AB123", "tpms": {"blob": "x" * 1_000_000}})
    assert info.value.status == 413 and "`tpms`" in info.value.detail
    assert info.value.extra["field"] == "tpms"
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxEvent)
                                    .where(OutboxEvent.payload["type"].as_string() == "plate.detected")) == 0


def test_failures_are_classified_as_poison_transient_or_unknown():
    assert classify(parse_error()) == "poison"
    assert classify(ValueError("bad value")) == "poison"
    assert classify(ConnectionRefusedError()) == "transient"
    assert classify(TimeoutError()) == "transient"
    assert classify(OperationalError("SELECT 1", {}, ConnectionError("gone"))) == "transient"
    from redis.exceptions import ConnectionError as RedisConnectionError

    assert classify(RedisConnectionError("down")) == "transient"
    from vigil.core.errors import NotFound, ServiceUnavailable

    assert classify(ServiceUnavailable("down")) == "transient"
    assert classify(NotFound("no such zone")) == "poison"
    assert classify(RuntimeError("who knows")) == "unknown"


def parse_error() -> Exception:
    try:
        json.loads("{nope")
    except json.JSONDecodeError as exc:
        return exc
    raise AssertionError


async def test_an_outage_pauses_the_consumer_and_never_dead_letters(stack):
    """The handler's database is down for a while: the consumer waits (and says so), then handles every
    record in order once it is back; nothing reaches the DLQ."""
    bootstrap = stack.settings.kafka_bootstrap_servers
    topic = f"outage-{uuid.uuid4().hex[:6]}"
    group = f"g-{uuid.uuid4().hex[:6]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    bus = Bus(bootstrap, name="outage-consumer-test")
    await bus.start()
    assert await bus.wait_ready(10)
    handled: list[int] = []
    database_up = asyncio.Event()
    failures = {"n": 0}

    async def handler(record):
        n = parse_json(record)["n"]
        if not database_up.is_set():
            failures["n"] += 1
            raise OperationalError("INSERT ...", {}, ConnectionRefusedError("connection refused"))
        handled.append(n)

    spec = ConsumerSpec(name="outage", topics=[topic], handler=handler, group=group, bootstrap_servers=bootstrap,
                        max_retries=1, retry_backoff_s=0.05)
    runner = ConsumerRunner(spec, bus, max_backoff_s=0.3)
    task = asyncio.create_task(runner.run())
    try:
        for n in range(10):
            await producer.send_and_wait(topic, json.dumps({"n": n}).encode(), key=b"k")
        for _ in range(600):  # joining a new group takes a few seconds on the embedded broker
            if failures["n"] >= 8:
                break
            await asyncio.sleep(0.05)
        assert failures["n"] >= 8, "the handler is retried while the outage lasts"
        status = runner.status()
        assert status["status"] == "waiting" and "OperationalError" in status["reason"]
        assert handled == [] and runner.dead_lettered == 0
        database_up.set()
        for _ in range(400):
            if len(handled) == 10:
                break
            await asyncio.sleep(0.05)
        assert handled == list(range(10))
        assert runner.status()["status"] == "running" and runner.dead_lettered == 0
        assert await read_all(bootstrap, f"{topic}.dlq", 1, timeout=1.5) == []
    finally:
        await runner.stop()
        await asyncio.wait_for(task, 15)
        await producer.stop()
        await bus.stop()


async def test_admin_lists_parked_outbox_rows_and_raises_a_platform_alert(server, client, make_key):
    async with session_scope(server.ctx.sessionmaker) as session:
        session.add(OutboxEvent(topic="vigil.events", key="big", payload={"type": "plate.detected", "data": {
            "tpms": "y" * 1_100_000}}))
    for _ in range(100):
        r = await client.get("/api/v1/admin/outbox", params={"status": "parked"})
        assert r.status_code == 200, r.text
        if r.json()["total"] == 1:
            break
        await asyncio.sleep(0.1)
    body = r.json()
    assert set(body) == {"items", "total", "limit", "offset"} and body["total"] == 1
    item = body["items"][0]
    assert item["status"] == "parked" and item["topic"] == "vigil.events" and item["event_type"] == "plate.detected"
    assert "TooLarge" in item["reason"] and item["parked_at"] and item["payload_bytes"] > 1_000_000
    alerts = []
    for _ in range(50):
        alerts = (await client.get("/api/v1/alerts", params={"source": "platform"})).json()["items"]
        if alerts:
            break
        await asyncio.sleep(0.1)
    assert [a["kind"] for a in alerts] == ["outbox_parked"]
    assert alerts[0]["data"]["outbox_id"] == item["id"]
    assert (await client.get("/api/v1/admin/outbox", params={"status": "pending"})).json()["total"] == 0
    assert (await client.get("/api/v1/admin/outbox", params={"status": "bogus"})).status_code == 422
    reader = await make_key("read", "write")
    r = await client.get("/api/v1/admin/outbox", headers=auth(reader))
    assert r.status_code == 403
    consumers = (await client.get("/health")).json()["consumers"]
    assert {"ws-fanout", "reid-alerts"} <= set(consumers)
    assert consumers["reid-alerts"]["status"] == "running"
    assert consumers["reid-alerts"]["topics"] == ["person_reid_alerts"]


async def test_dead_letters_are_listed_and_replayed_once(server, client, make_key):
    """A live ReID alert dead-lettered (as the old consumer did in an outage) is replayed: it becomes an
    alert; replaying again, or the same dead letter delivered again, changes nothing. (Exact replay
    counts on a topic of its own: the CLI test. Here the DLQ may hold other tests' poison, which a
    replay sends back and the consumer dead-letters again.)"""
    bootstrap = server.ctx.settings.kafka_bootstrap_servers
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        marker = uuid.uuid4().hex[:8]
        for i in range(3):
            value = json.dumps({"global_id": 500 + i, "kind": f"replayed_{marker}"}).encode()
            await producer.send_and_wait(f"{REID_TOPIC}.dlq", value, key=b"k", headers=[
                ("x-dlq-reason", b"failed after 4 attempts: OperationalError"),
                ("x-original-topic", REID_TOPIC.encode()), ("x-original-partition", b"0"),
                ("x-original-offset", str(10_000 + i).encode()), ("x-original-timestamp", b"1790000000000"),
            ])
        listing = (await client.get("/api/v1/admin/dlq")).json()
        entry = next(d for d in listing if d["topic"] == REID_TOPIC)
        assert entry["dlq_topic"] == f"{REID_TOPIC}.dlq" and entry["count"] >= 3

        r = await client.post(f"/api/v1/admin/dlq/{REID_TOPIC}/replay")
        assert r.status_code == 200 and r.json()["replayed"] >= 3

        async def ours():
            items = (await client.get("/api/v1/alerts", params={"source": "reid", "limit": 100})).json()["items"]
            return sorted((a["subject"], a["count"]) for a in items if a["kind"] == f"replayed_{marker}")

        expected = [(f"global_id:{500 + i}", 1) for i in range(3)]
        for _ in range(100):
            if await ours() == expected:
                break
            await asyncio.sleep(0.1)
        assert await ours() == expected
        # Replaying again sends none of ours: they were committed as replayed.
        await client.post(f"/api/v1/admin/dlq/{REID_TOPIC}.dlq/replay")
        # The same dead letter replayed again by hand (as an interrupted replay could): nothing changes.
        replayed = await read_all(bootstrap, REID_TOPIC, 100_000, timeout=2)
        again = [r for r in replayed if marker.encode() in (r.value or b"")]
        assert len(again) == 3 and all(dict(r.headers).get("x-replayed-from") for r in again)
        for r in again:
            await producer.send_and_wait(REID_TOPIC, r.value, key=r.key, headers=list(r.headers))
        await asyncio.sleep(1.5)
        assert await ours() == expected
        reader = await make_key("read")
        assert (await client.get("/api/v1/admin/dlq", headers=auth(reader))).status_code == 403
        assert (await client.post(f"/api/v1/admin/dlq/{REID_TOPIC}/replay", headers=auth(reader))).status_code == 403
    finally:
        await producer.stop()


def test_cli_lists_and_replays_dead_letters(stack):
    """`vigil dlq list` and `vigil dlq replay TOPIC --limit N` against the same broker."""
    import os
    import subprocess
    import sys

    bootstrap = stack.settings.kafka_bootstrap_servers
    topic = f"cli-{uuid.uuid4().hex[:6]}"

    async def put_dead_letters():
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for i in range(3):
                await producer.send_and_wait(f"{topic}.dlq", json.dumps({"n": i}).encode(),
                                             headers=[("x-original-topic", topic.encode())])
        finally:
            await producer.stop()

    asyncio.run(put_dead_letters())
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "REDPANDA_BROKERS": bootstrap,
           "REDIS_URL": stack.settings.redis_url, "VIGIL_DATA_DIR": "/nonexistent-vigil-cli-test"}

    def vigil(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "vigil.cli", "dlq", *args], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def waiting() -> int:
        rows = dict(line.split("\t") for line in vigil("list").splitlines() if "\t" in line)
        return int(rows[topic])

    assert waiting() == 3
    assert vigil("replay", topic, "--limit", "2").strip() == "replayed 2"
    assert waiting() == 1
    assert vigil("replay", f"{topic}.dlq").strip() == "replayed 1"
    assert vigil("replay", topic).strip() == "replayed 0"
    back = asyncio.run(read_all(bootstrap, topic, 3))
    assert sorted(json.loads(r.value)["n"] for r in back) == [0, 1, 2]
