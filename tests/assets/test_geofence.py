"""Geofences: shapes and validation, the hysteresis state machine, and the live path end to end."""

import asyncio
import json
import math
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import websockets
from aiokafka import AIOKafkaProducer

from tests.assets.helpers import eventually, make_asset, make_site_with_gateways, readings_at
from tests.conftest import ADMIN_KEY, auth
from vigil.assets.geofences import shapes as gf
from vigil.assets.tracking.locate import Reading, distance_to_rssi, locate, smooth_window

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CORNERS = [(0.0, 0.0), (20.0, 0.0), (0.0, 20.0), (20.0, 20.0)]


def test_shapes_signed_depth_and_validation():
    c = gf.circle((10, 10), 5)
    assert c.depth(10, 10) == pytest.approx(5) and c.depth(16, 10) == pytest.approx(-1)
    square = gf.polygon([[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]])  # a closed ring is fine too
    assert square.depth(9.7, 5) == pytest.approx(0.3) and square.depth(12, 5) == pytest.approx(-2)
    for bad in ([[0, 0], [1, 1]], [[0, 0], [1, 1], [2, 2]], [[0, 0], [10, 10], [10, 0], [0, 10]]):
        with pytest.raises(gf.InvalidShape):
            gf.polygon(bad)
    for radius in (0, -1, None):
        with pytest.raises(gf.InvalidShape):
            gf.circle((0, 0), radius)
    with pytest.raises(gf.InvalidShape):
        gf.build("circle", center=[0, 0], radius_m=1, points=[[0, 0], [1, 0], [0, 1]])


def test_step_margin_and_dwell():
    at = lambda s: T0 + timedelta(seconds=s)  # noqa: E731
    state, event = gf.step(None, 0.3, at(0), margin_m=0.5, dwell_s=0)
    assert event is None and not state.inside, "inside the margin band and no dwell: not yet"
    state, event = gf.step(state, 0.6, at(1), margin_m=0.5, dwell_s=0)
    assert event == "enter" and state.inside and state.since == at(1)
    state, event = gf.step(state, -0.4, at(2), margin_m=0.5, dwell_s=0)
    assert event is None and state.inside
    state, event = gf.step(state, -0.6, at(3), margin_m=0.5, dwell_s=0)
    assert event == "exit" and not state.inside
    # Dwell: inside (by any amount) without a break for dwell_s.
    s, e = gf.step(None, 0.1, at(0), margin_m=0.5, dwell_s=10)
    assert e is None and s.pending_since == at(0)
    s, e = gf.step(s, 0.2, at(5), margin_m=0.5, dwell_s=10)
    assert e is None
    s, e = gf.step(s, -0.1, at(6), margin_m=0.5, dwell_s=10)
    assert e is None and s.pending_since is None, "a step back resets the dwell clock"
    s, e = gf.step(s, 0.1, at(7), margin_m=0.5, dwell_s=10)
    s, e = gf.step(s, 0.1, at(17), margin_m=0.5, dwell_s=10)
    assert e == "enter" and s.inside and s.pending_since is None


def simulate(margin_m, dwell_s, seed, *, sigma_db=1.0, hz=2, minutes=8):
    """A tag 0.3 m inside the edge of a 4 m circle round a dock near one gateway: noisy readings at `hz`
    per gateway, smoothed over 10 s windows as the pipeline does, one estimate per second."""
    fence = gf.circle((3.0, 3.0), 4.0)
    truth = (3.0 + 3.7 / math.sqrt(2), 3.0 + 3.7 / math.sqrt(2))
    assert fence.depth(*truth) == pytest.approx(0.3)
    rng = np.random.default_rng(seed)
    history, state, events, depths = [], None, [], []
    for i in range(minutes * 60 * hz):
        t = i / hz
        for g, pos in enumerate(CORNERS):
            history.append((g, t, float(distance_to_rssi(math.dist(truth, pos))) + rng.normal(0, sigma_db)))
        if i % hz:
            continue
        smoothed = smooth_window(history[-4 * 20:], window_s=10, max_readings=20)
        est = locate([Reading(*CORNERS[g], rssi) for g, rssi in smoothed.items()])
        depths.append(fence.depth(est.x, est.y))
        state, event = gf.step(state, depths[-1], T0 + timedelta(seconds=t), margin_m=margin_m, dwell_s=dwell_s)
        if event:
            events.append(event)
    return events, depths


@pytest.mark.parametrize("seed", range(3))
def test_tag_just_inside_the_edge_enters_once_and_does_not_flap(seed):
    events, depths = simulate(margin_m=0.5, dwell_s=30, seed=seed)
    assert events == ["enter"]
    # The readings really were noisy: estimates fell on both sides of the edge.
    assert min(depths) < 0 < max(depths)
    # The same readings without hysteresis flap: the test can tell the difference.
    bare, _ = simulate(margin_m=0.0, dwell_s=0, seed=seed)
    assert len(bare) >= 5


async def make_fence(client, site_id, **kw):
    body = {"name": "Dock", "site_id": site_id, "kind": "circle", "center": [5, 5], "radius_m": 3,
            "alert_on": ["enter", "exit"], "severity": "critical"} | kw
    r = await client.post("/api/v1/geofences", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def test_geofence_crud_and_bad_shapes(server, client):
    site, _ = await make_site_with_gateways(client)
    fence = await make_fence(client, site["id"])
    assert fence["center"] == [5.0, 5.0] and fence["margin_m"] == 0.5 and fence["dwell_s"] == 0.0
    poly = await make_fence(client, site["id"], name="Bay", kind="polygon", center=None, radius_m=None,
                            polygon=[[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]])
    assert poly["polygon"] == [[0, 0], [4, 0], [4, 4], [0, 4]] and poly["center"] is None
    bad = [
        {"kind": "circle", "center": [1, 1], "radius_m": 0},
        {"kind": "circle", "center": [1, 1], "radius_m": -2},
        {"kind": "circle", "radius_m": 2},
        {"kind": "polygon", "polygon": [[0, 0], [2, 2], [2, 0], [0, 2]]},  # a bow tie
        {"kind": "polygon", "polygon": [[0, 0], [1, 1]]},
        {"kind": "polygon", "center": [0, 0], "polygon": [[0, 0], [1, 0], [0, 1]]},
        {"kind": "hexagon"},
        {"kind": "circle", "center": [1, 1], "radius_m": 1, "alert_on": ["linger"]},
    ]
    for extra in bad:
        r = await client.post("/api/v1/geofences", json={"name": "x", "site_id": site["id"], **extra})
        assert r.status_code == 422, (extra, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    r = await client.post("/api/v1/geofences", json={"name": "x", "site_id": str(uuid.uuid4()), "kind": "circle",
                                                     "center": [0, 0], "radius_m": 1})
    assert r.status_code == 422
    assert (await client.get("/api/v1/geofences")).json()["total"] == 2
    url = f"/api/v1/geofences/{fence['id']}"
    assert (await client.patch(url, json={"radius_m": 0})).status_code == 422
    assert (await client.patch(url, json={"polygon": [[0, 0], [1, 0], [0, 1]]})).status_code == 422
    grown = (await client.patch(url, json={"radius_m": 6, "dwell_s": 5})).json()
    assert grown["radius_m"] == 6 and grown["dwell_s"] == 5 and grown["center"] == [5.0, 5.0]
    assert (await client.delete(url)).status_code == 204
    assert (await client.get(url)).status_code == 404


async def test_broker_to_websocket_location_and_geofence_alerts(server, client):
    """End to end: readings on the broker -> location.updated and the enter alert on WebSockets;
    leaving the fence raises the exit alert and resolves the enter one."""
    site, _ = await make_site_with_gateways(client)
    asset = await make_asset(client, "TAG-E2E", site["id"])
    fence = await make_fence(client, site["id"])
    producer = AIOKafkaProducer(bootstrap_servers=server.ctx.settings.redpanda)
    await producer.start()

    async def send(readings):
        for reading in readings:
            await producer.send("observations", json.dumps(reading).encode(), key=reading["tag_id"].encode())
        await producer.flush()

    headers = auth(ADMIN_KEY)
    try:
        async with websockets.connect(f"{server.ws_url}/ws/locations/{asset['id']}",
                                      additional_headers=headers) as loc_ws, \
                websockets.connect(f"{server.ws_url}/ws/alerts?source=geofence",
                                   additional_headers=headers) as alert_ws:
            await asyncio.sleep(0.2)
            start = datetime.now(UTC) - timedelta(seconds=30)
            await send(readings_at("TAG-E2E", (5.0, 6.0), count=3, start=start))  # 1 m from the centre
            loc = json.loads(await asyncio.wait_for(loc_ws.recv(), 20))
            assert loc["type"] == "location.updated" and math.dist((loc["data"]["x"], loc["data"]["y"]), (5, 6)) < 0.1
            alert = json.loads(await asyncio.wait_for(alert_ws.recv(), 20))
            assert alert["type"] == "alert.created"
            entered = alert["data"]
            assert entered["kind"] == "geofence_enter" and entered["severity"] == "critical"
            assert entered["data"]["asset_id"] == asset["id"] and entered["data"]["geofence_id"] == fence["id"]

            # Well outside: the exit is raised and the enter alert resolved.
            await send(readings_at("TAG-E2E", (15.0, 15.0), count=3, start=start + timedelta(seconds=15)))
            seen = {}
            while len(seen) < 2:
                msg = json.loads(await asyncio.wait_for(alert_ws.recv(), 20))
                seen[(msg["type"], msg["data"]["kind"])] = msg["data"]
            assert seen[("alert.updated", "geofence_enter")]["status"] == "resolved"
            assert seen[("alert.created", "geofence_exit")]["data"]["event"] == "exit"
    finally:
        await producer.stop()
    states = (await client.get(f"/api/v1/assets/{asset['id']}/geofences")).json()
    assert states == [{"geofence_id": fence["id"], "inside": False, "since": states[0]["since"],
                       "pending_since": None}]
    await server.ctx.redis.delete(f"vigil:assets:fences:{asset['id']}")
    assert (await client.get(f"/api/v1/assets/{asset['id']}/geofences")).json()[0]["inside"] is False
    active = (await client.get("/api/v1/alerts", params={"source": "geofence", "status": "open"})).json()
    assert [a["kind"] for a in active["items"]] == ["geofence_exit"]
    history = (await client.get(f"/api/v1/assets/{asset['id']}/locations")).json()
    assert history["total"] == 2
    # A deleted fence disappears from the asset's states, even while the Redis mirror still holds it.
    await client.post("/api/v1/observations", json={"observations": readings_at(
        "TAG-E2E", (14.0, 15.0), count=1, start=start + timedelta(seconds=25))})
    await eventually(lambda: server.ctx.redis.exists(f"vigil:assets:fences:{asset['id']}"))
    assert (await client.delete(f"/api/v1/geofences/{fence['id']}")).status_code == 204
    assert (await client.get(f"/api/v1/assets/{asset['id']}/geofences")).json() == []


async def test_moving_to_another_site_exits_the_fences_left_behind(server, client):
    site, _ = await make_site_with_gateways(client)
    other = (await client.post("/api/v1/sites", json={"name": "Warehouse"})).json()
    for name, (x, y) in {"b-sw": (0, 0), "b-se": (20, 0), "b-nw": (0, 20), "b-ne": (20, 20)}.items():
        r = await client.post("/api/v1/gateways", json={"name": name, "site_id": other["id"], "x": x, "y": y})
        assert r.status_code == 201
    asset = await make_asset(client, "TAG-TRAVEL", site["id"])
    fence = await make_fence(client, site["id"], alert_on=["exit"])
    start = datetime.now(UTC) - timedelta(seconds=60)
    await client.post("/api/v1/observations", json={"observations": readings_at("TAG-TRAVEL", (5, 5), count=2,
                                                                               start=start)})

    async def inside():
        states = (await client.get(f"/api/v1/assets/{asset['id']}/geofences")).json()
        return states and states[0]["inside"]

    await eventually(inside)
    later = readings_at("TAG-TRAVEL", (5, 5), count=2, start=start + timedelta(seconds=20))
    for reading in later:
        reading["gateway_id"] = "b-" + reading["gateway_id"].removeprefix("gw-")
    await client.post("/api/v1/observations", json={"observations": later})

    async def exited():
        items = (await client.get("/api/v1/alerts", params={"kind": "geofence_exit"})).json()["items"]
        return items[0] if items else None

    alert = await eventually(exited)
    assert alert["data"]["geofence_id"] == fence["id"] and alert["data"]["location_site_id"] == other["id"]
    assert alert["data"]["depth_m"] is None
    assert (await client.get(f"/api/v1/assets/{asset['id']}/location")).json()["site_id"] == other["id"]
