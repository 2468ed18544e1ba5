"""Observations in (HTTP and broker), debounced estimation out: history, current location, live events."""

import asyncio
import json
import math
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import websockets
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from tests.assets.helpers import eventually, make_asset, make_site_with_gateways, readings_at
from tests.conftest import ADMIN_KEY, auth
from vigil.assets import tasks
from vigil.assets.tracking import estimation as tracking
from vigil.assets.tracking.models import LocationEstimate, Observation

PROBLEM = "application/problem+json"


def observed(result: str) -> float:
    """The ingest counter as /metrics exposes it (the test server runs in this process)."""
    return REGISTRY.get_sample_value("vigil_assets_observations_total", {"result": result}) or 0.0


async def count(server, model, *where):
    async with server.ctx.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def test_http_batch_is_stored_and_located_once(server, client, make_key):
    site, _ = await make_site_with_gateways(client)
    asset = await make_asset(client, "TAG-1", site["id"])
    batch = readings_at("TAG-1", (5.0, 12.0), count=5, battery=76.5)
    batch += [{"gateway_id": "gw-sw", "tag_id": "GHOST", "rssi": -60, "observed_at": batch[0]["observed_at"]},
              {"gateway_id": "gw-nowhere", "tag_id": "TAG-1", "rssi": -60, "observed_at": batch[0]["observed_at"]}]
    ingest = await make_key("ingest")
    before = {k: observed(k) for k in ("stored", "unknown_tag", "unknown_gateway")}
    async with httpx.AsyncClient(base_url=server.url, headers=auth(ingest)) as device:
        r = await device.post("/api/v1/observations", json={"observations": batch})
        assert {k: observed(k) - v for k, v in before.items()} == {"stored": 20, "unknown_tag": 1,
                                                                   "unknown_gateway": 1}
        assert r.status_code == 202, r.text
        assert r.json() == {"received": 22, "stored": 20, "duplicates": 0, "unknown_tags": ["GHOST"],
                            "unknown_gateways": ["gw-nowhere"], "dropped": 2}
        again = (await device.post("/api/v1/observations", json={"observations": batch[:4]})).json()
        assert again["stored"] == 0 and again["duplicates"] == 4
        # An ingest key opens nothing else.
        assert (await device.get("/api/v1/assets")).status_code == 403
    read = await make_key("read")
    assert (await client.post("/api/v1/observations", json={"observations": []},
                              headers=auth(read))).status_code == 403

    async def located():
        r = await client.get(f"/api/v1/assets/{asset['id']}/location")
        return r.json() if r.status_code == 200 else None

    loc = await eventually(located)
    assert loc["method"] == "trilateration" and loc["site_id"] == site["id"]
    assert math.dist((loc["x"], loc["y"]), (5.0, 12.0)) < 0.1 and loc["accuracy_m"] < 0.1
    assert loc["estimated_at"] == (await client.get(f"/api/v1/assets/{asset['id']}")).json()["last_seen_at"]
    history = (await client.get(f"/api/v1/assets/{asset['id']}/locations")).json()
    assert history["total"] == 1, "one batch, one estimate"
    body = (await client.get(f"/api/v1/assets/{asset['id']}")).json()
    assert body["battery"] == 76.5 and body["battery_reported_at"]
    # The Redis copy gone, the history still answers.
    await server.ctx.redis.delete(tracking.LOCATION_KEY.format(asset["id"]))
    assert (await located())["x"] == loc["x"]


async def test_bad_batches_are_rejected_whole(server, client):
    site, _ = await make_site_with_gateways(client)
    await make_asset(client, "TAG-1", site["id"])
    good = readings_at("TAG-1", (10.0, 10.0), count=1)
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    bad_batches = [
        ([*good, {**good[0], "rssi": -121}], 422),
        ([*good, {**good[0], "rssi": 3}], 422),
        ([*good, {**good[0], "observed_at": future}], 422),
        ([*good, {**good[0], "observed_at": "2026-01-01T00:00:00"}], 422),  # no timezone
        ([*good, {**good[0], "extra": 1}], 422),
        (good * 251, 413),  # 1,004 > 1,000
    ]
    for batch, status in bad_batches:
        r = await client.post("/api/v1/observations", json={"observations": batch})
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == PROBLEM
    assert await count(server, Observation) == 0
    assert (await client.post("/api/v1/observations", content=b"{nope",
                              headers={"content-type": "application/json"})).status_code == 400


async def test_burst_is_estimated_once(server, client):
    site, _ = await make_site_with_gateways(client)
    asset = await make_asset(client, "TAG-B", site["id"])
    asset_id = uuid.UUID(asset["id"])
    # The tag's first reading of a burst sets its due time; later ones do not move it (ZADD NX). Make
    # that first due time 1.5 s away so the whole burst below lands inside it, however slow the machine.
    await tracking.schedule(server.ctx.redis, [asset_id], 1.5)
    due = await server.ctx.redis.zscore(tracking.DUE_KEY, str(asset_id))
    start = datetime.now(UTC) - timedelta(seconds=10)
    newest = None
    for i in range(5):
        batch = readings_at("TAG-B", (3.0, 3.0), count=2, start=start + timedelta(seconds=2 * i))
        newest = batch[-1]["observed_at"]
        assert (await client.post("/api/v1/observations", json={"observations": batch})).status_code == 202
    assert await server.ctx.redis.zscore(tracking.DUE_KEY, str(asset_id)) == due
    await eventually(lambda: count(server, LocationEstimate, LocationEstimate.asset_id == asset_id))
    await eventually(lambda: _not_pending(server, asset_id))
    history = (await client.get(f"/api/v1/assets/{asset['id']}/locations")).json()
    assert history["total"] == 1, "five requests, one estimate"
    assert datetime.fromisoformat(history["items"][0]["estimated_at"]) == datetime.fromisoformat(newest)
    # Estimating again over the same readings stores nothing new.
    assert await tracking.estimate_assets(server.ctx, [asset_id]) == 0


async def _not_pending(server, asset_id):
    return await server.ctx.redis.zscore(tracking.DUE_KEY, str(asset_id)) is None


async def test_broker_readings_reach_websocket_and_bad_ones_the_dlq(server, client):
    site, gateways = await make_site_with_gateways(client)
    asset = await make_asset(client, "TAG-K", site["id"])
    other = await make_asset(client, "TAG-OTHER", site["id"])
    bootstrap = server.ctx.settings.redpanda
    dlq = AIOKafkaConsumer("observations.dlq", bootstrap_servers=bootstrap, group_id=None,
                           auto_offset_reset="latest")
    await dlq.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await dlq.seek_to_end()
        for tp in dlq.assignment():
            await dlq.position(tp)
        url = f"{server.ws_url}/ws/locations/{asset['id']}"
        async with websockets.connect(url, additional_headers=auth(ADMIN_KEY)) as ws, \
                websockets.connect(f"{server.ws_url}/ws/locations?site_id={site['id']}",
                                   additional_headers=auth(ADMIN_KEY)) as site_ws:
            await asyncio.sleep(0.2)
            token = str(uuid.uuid4())
            bad = [b"{not json", json.dumps({"tag_id": "TAG-K", "gateway_id": "gw-sw", "rssi": -300,
                                             "observed_at": datetime.now(UTC).isoformat(), "token": token}).encode()]
            for value in bad:
                await producer.send_and_wait("observations", value, key=b"TAG-K")
            unknown = readings_at("NOBODY", (1.0, 1.0), count=1)
            for reading in readings_at("TAG-K", (14.0, 6.0), count=3) + unknown:
                # Gateways may be named by id as well as by name; fields of the device's own are ignored.
                reading["gateway_id"] = gateways[reading["gateway_id"]]["id"]
                reading["firmware"] = "1.2.3"
                await producer.send("observations", json.dumps(reading).encode(), key=reading["tag_id"].encode())
            await producer.flush()
            msg = json.loads(await asyncio.wait_for(ws.recv(), 20))
            assert msg["type"] == "location.updated"
            data = msg["data"]
            assert data["asset_id"] == asset["id"] and data["tag_id"] == "TAG-K" and data["site_id"] == site["id"]
            assert math.dist((data["x"], data["y"]), (14.0, 6.0)) < 0.1
            assert json.loads(await asyncio.wait_for(site_ws.recv(), 10))["data"]["asset_id"] == asset["id"]
            # Another asset's location is not on this asset's stream.
            await client.post("/api/v1/observations", json={"observations": readings_at("TAG-OTHER", (2.0, 2.0))})
            other_msg = json.loads(await asyncio.wait_for(site_ws.recv(), 10))
            assert other_msg["data"]["asset_id"] == other["id"]
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.5)
        dead = []

        async def dead_lettered():
            for batch in (await dlq.getmany(timeout_ms=200)).values():
                dead.extend(batch)
            return len(dead) >= 2

        await eventually(dead_lettered)
        assert {r.value for r in dead} == set(bad)
        assert all(dict(r.headers)["x-dlq-reason"] for r in dead)
        assert await count(server, Observation) == 12 + 20
    finally:
        await producer.stop()
        await dlq.stop()


async def test_retention_cleanup_deletes_only_old_readings(server, client):
    site, _ = await make_site_with_gateways(client)
    await make_asset(client, "TAG-R", site["id"])
    old_start = datetime.now(UTC) - timedelta(days=8)
    old = readings_at("TAG-R", (10.0, 10.0), count=2, start=old_start)
    new = readings_at("TAG-R", (10.0, 10.0), count=1)
    assert (await client.post("/api/v1/observations", json={"observations": old + new})).json()["stored"] == 12
    assert await tasks.purge_old_observations(server.ctx) == 8
    assert await count(server, Observation) == 4
    assert await tasks.purge_old_observations(server.ctx) == 0
