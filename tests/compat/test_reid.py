"""The Person ReID backend's own README flows, replayed against Vigil's seed-compatible routes."""

from __future__ import annotations

import json
import uuid

from aiokafka import AIOKafkaProducer

from tests.conftest import auth
from tests.people.test_reid_alerts import wait_for

PROBLEM = "application/problem+json"
ZONE = {"zone_id": "ZONE_001", "zone_name": "Entrance", "x1": 0, "y1": 0, "x2": 10, "y2": 0,
        "x3": 10, "y3": 10, "x4": 0, "y4": 10}


async def test_readme_flow_zone_user_dict_stats_cache(client):
    r = await client.post("/zones", json=ZONE)
    assert r.status_code == 201, r.text
    assert r.json() | {"geometry": None} == ZONE | {"kind": "working", "geometry": None}
    assert (await client.get("/zones")).json()[0]["zone_name"] == "Entrance"
    assert (await client.get("/zones/ZONE_001")).json()["x3"] == 10

    # The seed README's curl example, unchanged.
    r = await client.post("/users", json={"global_id": 1001, "name": "Test User", "zone_id": "ZONE_001"})
    assert r.status_code == 201, r.text
    assert r.json()["global_id"] == 1001 and r.json()["name"] == "Test User"
    listed = (await client.get("/users")).json()
    assert isinstance(listed, list) and [u["global_id"] for u in listed] == [1001]

    assert (await client.get("/users-dict")).json() == {"1001": {"name": "Test User", "zone_id": "ZONE_001"}}
    assert (await client.get("/stats/users")).json() == {"count": 1}
    assert (await client.get("/stats/zones")).json() == [
        {"zone_id": "ZONE_001", "zone_name": "Entrance", "user_count": 1}]

    # The dict is cached and every write invalidates it; PUT is a full update keyed by global_id.
    r = await client.put("/users/1001", json={"global_id": 1001, "name": "Renamed", "zone_id": None})
    assert r.status_code == 200 and r.json()["zone_id"] is None
    assert (await client.get("/users-dict")).json() == {"1001": {"name": "Renamed", "zone_id": None}}
    stats = (await client.get("/cache/stats")).json()
    assert stats["hits"] + stats["misses"] >= 2 and "backend" in stats
    r = await client.post("/cache/invalidate/users-dict")
    assert r.status_code == 200 and r.json() == {"status": "invalidated", "cache": "users-dict"}
    assert (await client.get("/users/1001")).json()["name"] == "Renamed"

    assert (await client.delete("/users/1001")).status_code == 204
    r = await client.get("/users/1001")
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    assert (await client.get("/users")).json() == []


async def test_vigil_rules_hold_on_the_seed_paths(client):
    assert (await client.post("/zones", json=ZONE)).status_code == 201
    assert (await client.post("/zones", json=ZONE)).status_code == 409
    bowtie = ZONE | {"zone_id": "Z2", "x3": 0, "y3": 10, "x4": 10, "y4": 10}
    r = await client.post("/zones", json=bowtie)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    r = await client.post("/zones", json=ZONE | {"zone_id": "stats"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][:2] == ["body", "zone_id"]
    user = {"global_id": 7, "name": "A", "zone_id": "ZONE_001"}
    assert (await client.post("/users", json=user)).status_code == 201
    assert (await client.post("/users", json=user)).status_code == 409
    r = await client.post("/users", json={"global_id": 8, "name": "B", "zone_id": "NOPE"})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert (await client.post("/users", content=b"{not json", headers={"content-type": "application/json"})
            ).status_code == 400
    assert (await client.get("/users/notanumber")).status_code == 422


async def test_recent_messages_from_the_alert_topic(server, client):
    producer = AIOKafkaProducer(bootstrap_servers=server.ctx.settings.kafka_bootstrap_servers)
    await producer.start()
    marker = uuid.uuid4().hex
    try:
        await producer.send_and_wait("person_reid_alerts", json.dumps(
            {"global_id": 5, "zone_id": "ZONE_001", "alert_type": "intrusion", "marker": marker}).encode())
    finally:
        await producer.stop()

    async def recent():
        return (await client.get("/messages/recent")).json()

    got = await wait_for(recent, lambda msgs: len(msgs) >= 1)
    assert isinstance(got, list) and got[0]["value"]["marker"] == marker and got[0]["topic"] == "person_reid_alerts"
    # The message also becomes an alert; let it land before the next test's clean slate.
    await wait_for(lambda: client.get("/api/v1/alerts"), lambda r: r.json()["total"] == 1)


async def test_keys_and_scopes_apply(anon, client, make_key):
    assert (await anon.get("/users")).status_code == 401
    read = await make_key("read")
    r = await client.post("/users", json={"global_id": 1, "name": "x"}, headers=auth(read))
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    assert (await client.get("/users", headers=auth(read))).status_code == 200
    ingest = await make_key("ingest")
    assert (await client.get("/users-dict", headers=auth(ingest))).status_code == 403
