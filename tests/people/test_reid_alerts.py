"""`person_reid_alerts` on the real broker: alerts with resolved person/zone, DLQ, redelivery, recent raw
messages, and the end-to-end path Kafka -> alert -> /ws/alerts -> acknowledge over HTTP -> alert.updated."""

import asyncio
import json
import uuid

import pytest
import pytest_asyncio
import websockets
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from tests.conftest import ADMIN_KEY, auth
from vigil.alerts import service as alerts_service
from vigil.people.consumers import TOPIC, reid_alert_specs

SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]]}


@pytest_asyncio.fixture(loop_scope="session")
async def producer(server):
    p = AIOKafkaProducer(bootstrap_servers=server.ctx.settings.kafka_bootstrap_servers)
    await p.start()
    yield p
    await p.stop()


async def produce(producer, value, key=None):
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    await producer.send_and_wait(TOPIC, raw, key=key.encode() if key else None)


async def wait_for(fetch, ok, timeout=15.0):
    """Poll `fetch()` until `ok(result)`; returns the last result (the test's assert says what failed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await fetch()
        if ok(result) or loop.time() > deadline:
            return result
        await asyncio.sleep(0.1)


async def reid_alerts(client):
    return (await client.get("/api/v1/alerts", params={"source": "reid"})).json()["items"]


async def seed_people(client):
    r = await client.post("/api/v1/zones", json={"zone_id": "ZONE_001", "name": "Loading dock", "geometry": SQUARE,
                                                 "kind": "exclusion"})
    assert r.status_code == 201
    r = await client.post("/api/v1/people", json={"global_id": 7, "name": "Ada", "zone_id": "ZONE_001"})
    assert r.status_code == 201
    return r.json()


async def test_message_becomes_an_alert_with_person_zone_and_extra_fields(server, client, producer):
    ada = await seed_people(client)
    await produce(producer, {"global_id": 7, "zone_id": "ZONE_001", "camera_id": "cam-3", "kind": "restricted_zone",
                             "severity": "CRITICAL", "message": "Ada entered the loading dock",
                             "ts": "2026-11-21T08:00:00", "track_id": 991, "bbox": [1, 2, 3, 4]}, key="7")
    items = await wait_for(lambda: reid_alerts(client), lambda items: len(items) == 1)
    assert len(items) == 1
    alert = items[0]
    assert (alert["source"], alert["kind"], alert["severity"], alert["status"]) == \
        ("reid", "restricted_zone", "critical", "open")
    assert alert["title"] == "Ada entered the loading dock"
    data = alert["data"]
    assert data["person_id"] == ada["id"] and data["person_name"] == "Ada"
    assert data["zone_id"] == "ZONE_001" and data["zone_name"] == "Loading dock" and data["camera_id"] == "cam-3"
    assert data["track_id"] == 991 and data["bbox"] == [1, 2, 3, 4], "unknown fields are kept"
    assert data["ts"] == "2026-11-21T08:00:00+00:00", "a naive ts is taken as UTC"

    # The same condition again is the same alert, counted (a new record, not a redelivery).
    await produce(producer, {"global_id": 7, "zone_id": "ZONE_001", "kind": "restricted_zone",
                             "message": "Ada entered the loading dock"})
    items = await wait_for(lambda: reid_alerts(client), lambda items: items and items[0]["count"] == 2)
    assert len(items) == 1 and items[0]["count"] == 2 and items[0]["severity"] == "critical"


async def test_unknown_person_and_zone_still_raise_an_alert(server, client, producer):
    await produce(producer, {"global_id": 404, "zone_id": "ZONE_X"})
    items = await wait_for(lambda: reid_alerts(client), lambda items: len(items) == 1)
    assert len(items) == 1
    alert = items[0]
    assert alert["kind"] == "reid_alert" and alert["severity"] == "warning"
    assert alert["data"]["person_id"] is None and alert["data"]["zone_name"] is None
    assert alert["data"]["zone_id"] == "ZONE_X" and "unknown person (global_id 404)" in alert["title"]


async def dlq_records(bootstrap, marker, expected, timeout=15.0):
    consumer = AIOKafkaConsumer(f"{TOPIC}.dlq", bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    found = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(found) < expected and loop.time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                found.extend(r for r in batch if marker.encode() in (r.value or b""))
    finally:
        await consumer.stop()
    return found


async def test_malformed_messages_go_to_the_dlq_and_the_consumer_goes_on(server, client, producer):
    marker = uuid.uuid4().hex
    bad = [
        f"not json {marker}".encode(),
        json.dumps([marker]).encode(),
        json.dumps({"zone_id": "ZONE_001", "note": marker}).encode(),  # no global_id
        json.dumps({"global_id": "seven", "note": marker}).encode(),
        json.dumps({"global_id": 7, "severity": "apocalyptic", "note": marker}).encode(),
        json.dumps({"global_id": -1, "note": marker}).encode(),
    ]
    for value in bad:
        await produce(producer, value)
    await produce(producer, {"global_id": 8, "kind": "after_the_poison"})
    items = await wait_for(lambda: reid_alerts(client), lambda items: len(items) == 1)
    assert [a["kind"] for a in items] == ["after_the_poison"]
    dead = await dlq_records(server.ctx.settings.kafka_bootstrap_servers, marker, len(bad))
    assert sorted(r.value for r in dead) == sorted(bad)
    reasons = [dict(r.headers)["x-dlq-reason"].decode() for r in dead]
    assert all(reason.startswith("PoisonMessage") for reason in reasons), reasons
    assert any("not JSON" in r for r in reasons) and any("global_id" in r for r in reasons)
    assert any("severity" in r for r in reasons)


def record(value: bytes, offset: int = 5, timestamp: int = 1_790_000_000_000) -> ConsumerRecord:
    return ConsumerRecord(topic=TOPIC, partition=0, offset=offset, timestamp=timestamp, timestamp_type=0,
                          key=None, value=value, checksum=None, serialized_key_size=-1,
                          serialized_value_size=len(value), headers=())


async def test_a_redelivered_record_changes_nothing_twice(server, client):
    handler = reid_alert_specs(server.ctx)[0].handler
    value = json.dumps({"global_id": 9, "kind": "loitering"}).encode()
    await handler(record(value))
    await handler(record(value))  # the same record again, e.g. after a crash before the offset commit
    items = await reid_alerts(client)
    assert len(items) == 1 and items[0]["count"] == 1
    await handler(record(value, offset=6))  # the same JSON at a new position is a new occurrence
    assert (await reid_alerts(client))[0]["count"] == 2


async def test_recent_raw_messages(server, client, producer):
    marker = uuid.uuid4().hex
    # One key, one partition: the consumer sees them in this order.
    await produce(producer, {"global_id": 1, "marker": marker}, key="same")
    await produce(producer, f"garbage {marker}".encode(), key="same")

    async def recent():
        return (await client.get("/api/v1/alerts/messages/recent", params={"limit": 10})).json()

    got = await wait_for(recent, lambda msgs: len(msgs) >= 2)
    assert got[0]["value"] == f"garbage {marker}", "newest first; not-JSON kept as text"
    assert got[1]["value"] == {"global_id": 1, "marker": marker} and got[1]["topic"] == TOPIC
    assert got[0]["key"] == "same" and got[0]["offset"] == got[1]["offset"] + 1 and got[0]["timestamp"]
    one = (await client.get("/api/v1/alerts/messages/recent", params={"limit": 1})).json()
    assert len(one) == 1 and one[0]["value"] == f"garbage {marker}"
    for bad in (0, 1001, "x"):
        assert (await client.get("/api/v1/alerts/messages/recent", params={"limit": bad})).status_code == 422
    # The valid one also becomes an alert; let it land before the next test's clean slate.
    assert len(await wait_for(lambda: reid_alerts(client), lambda items: len(items) == 1)) == 1


async def test_recent_messages_keep_only_the_last_n(server, client):
    for i in range(5):
        message = {"topic": TOPIC, "partition": 0, "offset": i, "key": None, "timestamp": None,
                   "received_at": "2026-11-21T08:00:00+00:00", "value": i}
        await alerts_service.remember_message(server.ctx.redis, message=message, keep=3)
    got = (await client.get("/api/v1/alerts/messages/recent", params={"limit": 10})).json()
    assert [m["value"] for m in got] == [4, 3, 2]
    # A consumer's batch goes in one round trip, oldest first, so the newest still comes first.
    batch = [{"topic": TOPIC, "partition": 0, "offset": i, "key": None, "timestamp": None,
              "received_at": "2026-11-21T08:00:00+00:00", "value": i} for i in range(10, 15)]
    await alerts_service.remember_messages(server.ctx.redis, messages=batch, keep=3)
    got = (await client.get("/api/v1/alerts/messages/recent", params={"limit": 10})).json()
    assert [m["value"] for m in got] == [14, 13, 12]


@pytest.mark.e2e
async def test_kafka_to_websocket_then_acknowledge_over_http(server, client, producer):
    await seed_people(client)
    url = f"{server.ws_url}/ws/alerts?source=reid&zone_id=ZONE_001"
    async with websockets.connect(url, additional_headers=auth(ADMIN_KEY)) as ws:
        await produce(producer, {"global_id": 7, "zone_id": "ZONE_002", "kind": "other_zone"})  # filtered out
        await produce(producer, {"global_id": 7, "zone_id": "ZONE_001", "camera_id": "cam-1",
                                 "kind": "intrusion", "severity": "critical", "message": "Intrusion"})
        created = json.loads(await asyncio.wait_for(ws.recv(), 15))
        assert created["type"] == "alert.created"
        alert = created["data"]
        assert (alert["source"], alert["kind"], alert["status"]) == ("reid", "intrusion", "open")
        assert alert["data"]["person_name"] == "Ada"

        r = await client.post(f"/api/v1/alerts/{alert['id']}/acknowledge")
        assert r.status_code == 200
        updated = json.loads(await asyncio.wait_for(ws.recv(), 15))
        assert updated["type"] == "alert.updated" and updated["data"]["id"] == alert["id"]
        assert updated["data"]["status"] == "acknowledged" and updated["data"]["acknowledged_by"]
    # The filtered-out alert was stored too (it just did not match this stream's filter).
    items = await wait_for(lambda: reid_alerts(client), lambda items: len(items) == 2)
    assert sorted(a["data"]["zone_id"] for a in items) == ["ZONE_001", "ZONE_002"]
