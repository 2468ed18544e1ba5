"""The ANPR cloud's own flows: its test's camera body, config zones, ingest with images, the event stream."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from tests.conftest import auth
from tests.plates.helpers import image_bytes

PROBLEM = "application/problem+json"
SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [100, 0], [100, 50], [0, 50], [0, 0]]]}


async def test_seed_camera_body_and_config_crud(client):
    # Exactly what the ANPR seed's own test posts.
    r = await client.post("/api/v1/config/cameras",
                          json={"name": "Test Camera", "rtsp_url": "rtsp://example.com/stream", "enabled": True})
    assert r.status_code == 201, r.text
    cam = r.json()
    assert cam["name"] == "Test Camera" and cam["fps"] is None and cam["enabled"] is True
    assert [c["id"] for c in (await client.get("/api/v1/config/cameras")).json()] == [cam["id"]]
    r = await client.put(f"/api/v1/config/cameras/{cam['id']}", json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert (await client.get(f"/api/v1/cameras/{cam['id']}")).json()["enabled"] is False, "the same camera"
    dup = await client.post("/api/v1/config/cameras", json={"name": "Test Camera", "rtsp_url": "rtsp://x/y"})
    assert dup.status_code == 409 and dup.headers["content-type"] == PROBLEM

    r = await client.post("/api/v1/config/zones",
                          json={"name": "Lane 1", "zone_type": "detection", "geometry": SQUARE, "camera_id": cam["id"]})
    assert r.status_code == 201, r.text
    zone = r.json()
    assert zone["zone_type"] == "detection" and zone["zone_id"].startswith("ZONE_")
    for key in (zone["id"], zone["zone_id"]):
        assert (await client.get(f"/api/v1/config/zones/{key}")).json()["name"] == "Lane 1"
    r = await client.put(f"/api/v1/config/zones/{zone['id']}", json={"zone_type": "parking"})
    assert r.status_code == 200 and r.json()["zone_type"] == "parking"
    r = await client.put(f"/api/v1/config/zones/{zone['id']}", json={"name": None})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    r = await client.post("/api/v1/config/zones", json={"name": "Bad", "zone_type": "working", "geometry": SQUARE})
    assert r.status_code == 422, "the seed knew detection, exclusion and parking only"
    r = await client.post("/api/v1/config/zones", json={"name": "Mine", "zone_type": "exclusion",
                                                        "geometry": SQUARE, "zone_id": "GATE_A"})
    assert r.status_code == 201 and r.json()["zone_id"] == "GATE_A"
    assert len((await client.get("/api/v1/config/zones")).json()) == 2
    assert (await client.delete(f"/api/v1/config/zones/{zone['zone_id']}")).status_code == 204
    assert (await client.get(f"/api/v1/config/zones/{zone['id']}")).status_code == 404

    model = (await client.post("/api/v1/config/models", json={"name": "lpr", "kind": "ocr", "version": "1",
                                                               "weights_uri": "s3://m/lpr.onnx"})).json()
    assert (await client.get(f"/api/v1/config/models/{model['id']}")).json()["name"] == "lpr"
    sensor = await client.post("/api/v1/config/sensors", json={"name": "s1", "camera_id": cam["id"]})
    assert sensor.status_code == 201, sensor.text
    assert len((await client.get("/api/v1/config/sensors")).json()) == 1
    assert (await client.delete(f"/api/v1/config/models/{model['id']}")).status_code == 204


async def test_ingest_with_frame_and_crop_reaches_the_stream(server, client, make_key):
    cam = (await client.post("/api/v1/config/cameras", json={"name": "Gate", "rtsp_url": "rtsp://e/s"})).json()
    read = await make_key("read")
    device = await make_key("ingest")
    base = server.ws_url + "/api/v1/events/stream"
    for bad in (base, f"{base}?token={device}"):  # no key; an ingest key opens no stream
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(bad):
                pass
    url = f"{base}?token={read}"
    async with websockets.connect(url) as ws:
        await asyncio.sleep(0.2)
        event = {"event_uid": "edge-1", "camera_id": cam["id"], "plate": "AB-123 c", "confidence": 0.93,
                 "captured_at": "2026-11-30T08:00:00+00:00"}
        files = {"event": (None, json.dumps(event), "application/json"),
                 "frame": ("frame.jpg", image_bytes("JPEG", (320, 240)), "image/jpeg"),
                 "crop": ("crop.jpg", image_bytes("JPEG", (80, 30)), "image/jpeg")}
        r = await client.post("/api/v1/events/ingest", files=files, headers=auth(device))
        assert r.status_code == 201, r.text
        stored = r.json()
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert message["type"] == "plate.event" and message["data"]["id"] == stored["id"]
    again = await client.post("/api/v1/events/ingest", files=files, headers=auth(device))
    assert again.status_code == 200 and again.json()["id"] == stored["id"], "the same event_uid, stored once"
    listed = (await client.get("/api/v1/events")).json()
    assert isinstance(listed, list) and [e["id"] for e in listed] == [stored["id"]]
    assert (await client.get(f"/api/v1/events/{stored['id']}")).json()["plate_normalized"] == "AB123C"
    assert (await client.get("/api/v1/events/stats")).json()["total"] == 1
    frame = await client.get(stored["frame_url"])
    assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"
    bad = {**files, "event": (None, json.dumps(event | {"event_uid": "edge-2"}), "application/json"),
           "frame": ("x.jpg", b"not an image", "image/jpeg")}
    r = await client.post("/api/v1/events/ingest", files=bad, headers=auth(device))
    assert r.status_code == 415 and r.headers["content-type"] == PROBLEM
    # An ingest key ingests and nothing else.
    assert (await client.get("/api/v1/events", headers=auth(device))).status_code == 403
