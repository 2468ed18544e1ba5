"""Delivery end to end: MQTT on a real broker, Kafka on the embedded one, retries, and a
receiver that is down while events are ingested."""

import asyncio
import json

import aiomqtt
import pytest
from aiokafka import AIOKafkaConsumer

from tests.exporters.conftest import Receiver, wait_for
from tests.plates.helpers import event, make_camera

URL = "/api/v1/exporters"


async def deliveries(client, exporter_id: str, **params) -> list[dict]:
    return (await client.get(f"{URL}/{exporter_id}/deliveries", params={"limit": 500} | params)).json()[
        "items"
    ]


async def test_mqtt_exporter_publishes_with_qos1(client, mqtt_broker):
    cam = await make_camera(client)
    exp = (
        await client.post(
            URL,
            json={
                "name": "mqtt",
                "kind": "mqtt",
                "event_types": ["plate."],
                "config": {
                    "host": "127.0.0.1",
                    "port": mqtt_broker,
                    "topic": "vigil/plates",
                    "username": "u",
                    "password": "pw",
                },
            },
        )
    ).json()
    assert exp["config"]["password"] == "***"
    async with aiomqtt.Client("127.0.0.1", mqtt_broker, identifier="test-subscriber") as sub:
        await sub.subscribe("vigil/plates", qos=1)
        ev = (await client.post("/api/v1/plates/events", json=event(cam))).json()
        message = await asyncio.wait_for(anext(aiter(sub.messages)), 20)
        body = json.loads(message.payload)
        assert message.qos == 1 and body["type"] == "plate.event" and body["data"]["id"] == ev["id"]
        test = (await client.post(f"{URL}/{exp['id']}/test")).json()
        assert test["ok"] is True, test
        message = await asyncio.wait_for(anext(aiter(sub.messages)), 20)
        assert json.loads(message.payload)["type"] == "exporter.test"
    await wait_for(lambda: _all_delivered(client, exp["id"], 1))


async def _all_delivered(client, exporter_id: str, n: int) -> bool:
    items = await deliveries(client, exporter_id)
    return len(items) == n and all(d["status"] == "delivered" for d in items)


async def test_kafka_exporters_shared_producer_and_given_bootstrap(client, stack):
    bootstrap = stack.settings.kafka_bootstrap_servers
    cam = await make_camera(client)
    shared = (
        await client.post(
            URL,
            json={
                "name": "kafka-app",
                "kind": "kafka",
                "event_types": ["plate.event"],
                "config": {"topic": "export.plates"},
            },
        )
    ).json()
    given = (
        await client.post(
            URL,
            json={
                "name": "kafka-given",
                "kind": "kafka",
                "event_types": ["plate.event"],
                "config": {"topic": "export.plates.2", "bootstrap_servers": bootstrap},
            },
        )
    ).json()
    ev = (await client.post("/api/v1/plates/events", json=event(cam))).json()
    await wait_for(lambda: _all_delivered(client, shared["id"], 1))
    await wait_for(lambda: _all_delivered(client, given["id"], 1))
    for exp, topic in ((shared, "export.plates"), (given, "export.plates.2")):
        [delivery] = await deliveries(client, exp["id"])
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            records = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 15
            while not records and loop.time() < deadline:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(batch)
        finally:
            await consumer.stop()
        mine = [r for r in records if dict(r.headers).get("x-vigil-delivery") == delivery["id"].encode()]
        assert len(mine) == 1, records
        assert json.loads(mine[0].value)["data"]["id"] == ev["id"]


async def test_retries_back_off_then_fail_without_disabling(client, receiver_factory):
    receiver = receiver_factory(status=500)
    await receiver.start()
    cam = await make_camera(client)
    short = (
        await client.post(
            URL,
            json={
                "name": "short",
                "kind": "webhook",
                "event_types": ["plate.event"],
                "config": {"url": receiver.url},
                "retry": {"max_attempts": 3, "backoff_seconds": 0.01},
            },
        )
    ).json()
    await client.post("/api/v1/plates/events", json=event(cam))

    async def failed():
        items = await deliveries(client, short["id"])
        return items and items[0]["status"] == "failed"

    await wait_for(failed)
    [d] = await deliveries(client, short["id"])
    assert d["attempts"] == 3 and d["last_error"] == "HTTP 500 from the webhook" and d["delivered_at"] is None
    assert len(receiver.received) == 3 and len(set(receiver.deliveries())) == 1  # same delivery id each time
    got = (await client.get(f"{URL}/{short['id']}")).json()
    assert got["enabled"] is True and got["consecutive_failures"] == 3

    # Three failures in seconds disable nothing: that is decided by time (tests/exporters/test_flaky_receivers.py).
    assert got["failing_since"] is not None and got["disabled_reason"] is None


async def test_events_ingested_while_receiver_is_down_arrive_once_after_it_returns(client, receiver_factory):
    receiver: Receiver = receiver_factory(
        secret="restart-secret"
    )  # not started: the port refuses connections
    cam = await make_camera(client)
    exp = (
        await client.post(
            URL,
            json={
                "name": "restart",
                "kind": "webhook",
                "event_types": ["plate.event"],
                "config": {"url": receiver.url, "secret": "restart-secret"},
                "retry": {"max_attempts": 40, "backoff_seconds": 0.05},
            },
        )
    ).json()
    ids = [
        (await client.post("/api/v1/plates/events", json=event(cam, plate=f"RS{i}"))).json()["id"]
        for i in range(5)
    ]

    async def retrying():
        items = await deliveries(client, exp["id"])
        # Every delivery failing, one of them retried (after a failed send the rest of that batch is noted as
        # "not tried" without counting an attempt). The events need not reach the consumer in one fetch, so
        # the last may be enqueued after the first has been retried: wait for all of them.
        return (
            len(items) == 5
            and all(d["status"] == "pending" and d["last_error"] for d in items)
            and max(d["attempts"] for d in items) >= 2
        )

    await wait_for(retrying)
    await receiver.start()
    await wait_for(lambda: _all_delivered(client, exp["id"], 5), timeout=30)
    await asyncio.sleep(0.5)  # anything sent twice would arrive by now
    counts = receiver.deliveries()
    assert sorted(counts) == sorted(d["id"] for d in await deliveries(client, exp["id"]))
    assert set(counts.values()) == {1}, counts
    assert all(r["signature_ok"] for r in receiver.received)
    assert sorted(r["body"]["data"]["id"] for r in receiver.received) == sorted(ids)


def _replace_worker(server):
    """Stop the running delivery worker the way a crash does (cancel) and start one this test owns; the app
    stops it at shutdown. Returns (worker, its task)."""
    from vigil.exporters.worker import DeliveryWorker

    worker = DeliveryWorker(server.ctx)
    task = asyncio.create_task(worker.run(), name=worker.name)

    async def stop_it() -> None:
        worker.stop()
        await asyncio.wait([task], timeout=10)

    server.app.state.runtime.domains.push_async_callback(stop_it)
    return worker, task


async def _kill_running_worker() -> None:
    task = next(t for t in asyncio.all_tasks() if t.get_name() == "exporter-deliveries")
    task.cancel()  # the process dies
    await asyncio.gather(task, return_exceptions=True)


async def test_worker_dying_mid_send_loses_nothing_and_keeps_the_delivery_id(
    server, client, receiver_factory
):
    """What an app restart does to deliveries: the worker dies while sending, events keep arriving, a new
    worker (the restarted app) sends everything; the interrupted one again, under the same delivery id."""
    receiver = receiver_factory(hang_first=True)
    await receiver.start()
    cam = await make_camera(client)
    exp = (
        await client.post(
            URL,
            json={
                "name": "crash",
                "kind": "webhook",
                "event_types": ["plate.event"],
                "config": {"url": receiver.url},
            },
        )
    ).json()
    try:
        await client.post("/api/v1/plates/events", json=event(cam, plate="CR0"))
        await wait_for(lambda: receiver.received)  # the worker is now stuck waiting for an answer
        await _kill_running_worker()
        for i in range(1, 4):  # the API keeps taking events while nothing delivers
            await client.post("/api/v1/plates/events", json=event(cam, plate=f"CR{i}"))
        await wait_for(lambda: _count(client, exp["id"], 4))
        items = await deliveries(client, exp["id"])
        assert {d["status"] for d in items} == {"pending"} and {d["attempts"] for d in items} == {0}
    finally:
        _replace_worker(server)  # the restarted app's worker, kept for the rest of the session
    await wait_for(lambda: _all_delivered(client, exp["id"], 4))
    counts = receiver.deliveries()
    assert sorted(counts) == sorted(d["id"] for d in await deliveries(client, exp["id"]))
    first = receiver.received[0]["delivery"]
    assert counts[first] == 2 and all(n == 1 for d, n in counts.items() if d != first)


async def test_a_stopped_worker_records_the_send_in_flight(server, client, receiver_factory):
    """SIGTERM while a webhook is on the wire: the worker waits for the answer and records it, so the
    delivery is not given back for another instance to send a second time."""
    receiver = receiver_factory(answer_first_after=1.5)
    await receiver.start()
    cam = await make_camera(client)
    exp = (
        await client.post(
            URL,
            json={"name": "graceful", "kind": "webhook", "event_types": ["plate.event"],
                  "config": {"url": receiver.url}},
        )
    ).json()
    await _kill_running_worker()
    worker, task = _replace_worker(server)
    try:
        await client.post("/api/v1/plates/events", json=event(cam, plate="GR0"))
        await wait_for(lambda: receiver.received)  # the answer is 1.5 s away
        worker.stop()
        await asyncio.wait_for(task, 10)
        items = await deliveries(client, exp["id"])
        assert [(d["status"], d["attempts"]) for d in items] == [("delivered", 1)], items
        assert len(receiver.received) == 1
    finally:
        _replace_worker(server)  # the session goes on with a running worker


async def _count(client, exporter_id: str, n: int) -> bool:
    return len(await deliveries(client, exporter_id)) == n


async def test_a_batch_of_events_becomes_one_delivery_per_event_and_exporter(server, client, receiver_factory):
    """The consumer's batch handler: several events in one unit of work, a redelivered one (same bytes)
    counted once, a JSON value that is no event skipped, and a record that is not JSON failing the
    whole batch (so the runner hands the records over one by one and dead-letters only that one)."""
    from aiokafka.structs import ConsumerRecord

    from vigil.core.messaging import PoisonMessage
    from vigil.exporters.consumers import consumer_specs

    receiver: Receiver = receiver_factory(secret="batch-secret")
    await receiver.start()
    made = [
        (await client.post(URL, json={"name": f"batch-{n}", "kind": "webhook", "event_types": ["demo."],
                                      "config": {"url": receiver.url, "secret": "batch-secret"}})).json()
        for n in (1, 2)
    ]
    (await client.post(URL, json={"name": "batch-other", "kind": "webhook", "event_types": ["plate.event"],
                                  "config": {"url": receiver.url, "secret": "batch-secret"}})).json()

    def record(offset: int, value: object) -> ConsumerRecord:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        return ConsumerRecord(topic="vigil.events", partition=0, offset=offset, timestamp=0, timestamp_type=0,
                              key=None, value=raw, checksum=None, serialized_key_size=-1,
                              serialized_value_size=len(raw), headers=())

    def demo(n: int) -> dict:
        return {"type": "demo.batch", "ts": "2999-01-01T00:00:00Z", "data": {"n": n}}

    batch = consumer_specs(server.ctx)[0].batch_handler
    await batch([record(1, demo(1)), record(2, [1, 2]), record(3, demo(2)), record(4, demo(1))])
    with pytest.raises(PoisonMessage):  # fails as a whole, before anything is written
        await batch([record(5, demo(3)), record(6, b"not json")])
    for exp in made:
        await wait_for(lambda exp=exp: _all_delivered(client, exp["id"], 2))
        items = await deliveries(client, exp["id"])
        assert sorted(d["payload"]["data"]["n"] for d in items) == [1, 2], items
    await asyncio.sleep(0.3)  # anything sent twice, or to the plate exporter, would arrive by now
    assert sorted(r["body"]["data"]["n"] for r in receiver.received) == [1, 1, 2, 2]
