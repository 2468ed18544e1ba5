"""Zones API: create (GeoJSON or corners), polygon errors, CRUD, contains, stats, guarded delete,
the camera a zone belongs to and the cameras and sensors that refer to a zone."""

import asyncio
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from tests.conftest import auth

SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]]}
PROBLEM = "application/problem+json"


def zone(zone_id="ZONE_001", **kw):
    return {"zone_id": zone_id, "name": f"Zone {zone_id}", "kind": "working", "geometry": SQUARE} | kw


async def make_camera(client, name="Hall", zone_ids=()):
    r = await client.post("/api/v1/cameras", json={"name": name, "rtsp_url": "rtsp://10.0.0.2/s", "fps": 10,
                                                   "width": 1280, "height": 720, "zone_ids": list(zone_ids)})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def test_create_get_list_update_delete(client):
    cam = await make_camera(client)
    r = await client.post("/api/v1/zones", json=zone(camera_id=cam))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["zone_id"] == "ZONE_001" and body["kind"] == "working" and body["camera_id"] == cam
    assert body["geometry"] == SQUARE and body["id"]
    assert datetime.fromisoformat(body["created_at"]).utcoffset() == timedelta(0)

    assert (await client.get("/api/v1/zones/ZONE_001")).json()["name"] == "Zone ZONE_001"
    await client.post("/api/v1/zones", json=zone("ZONE_002", kind="parking"))
    listed = (await client.get("/api/v1/zones")).json()
    assert [z["zone_id"] for z in listed["items"]] == ["ZONE_001", "ZONE_002"] and listed["total"] == 2
    assert [z["zone_id"] for z in (await client.get("/api/v1/zones", params={"kind": "parking"})).json()["items"]] \
        == ["ZONE_002"]
    assert (await client.get("/api/v1/zones", params={"camera_id": cam})).json()["total"] == 1
    assert (await client.get("/api/v1/zones", params={"camera_id": str(uuid.uuid4())})).json()["total"] == 0

    tri = {"type": "Polygon", "coordinates": [[[0, 0], [5, 0], [0, 5], [0, 0]]]}
    r = await client.patch("/api/v1/zones/ZONE_001", json={"name": "Dock", "geometry": tri, "camera_id": None})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Dock" and r.json()["geometry"] == tri and r.json()["camera_id"] is None
    assert r.json()["kind"] == "working", "fields not given stay as they were"

    assert (await client.delete("/api/v1/zones/ZONE_001")).status_code == 204
    assert (await client.get("/api/v1/zones/ZONE_001")).status_code == 404


async def test_seed_style_corners_are_stored_as_the_same_polygon(client):
    corners = {"x1": 0, "y1": 0, "x2": 10, "y2": 0, "x3": 10, "y3": 10, "x4": 0, "y4": 10}
    r = await client.post("/api/v1/zones", json={"zone_id": "Z_C", "name": "corners", **corners})
    assert r.status_code == 201, r.text
    assert r.json()["geometry"] == SQUARE
    bowtie = corners | {"x3": 0, "y3": 10, "x4": 10, "y4": 10}
    r = await client.patch("/api/v1/zones/Z_C", json=bowtie)
    assert r.status_code == 422 and "intersects itself" in r.json()["detail"]
    assert r.json()["errors"][0]["type"] == "self_intersecting"


@pytest.mark.parametrize(("coords", "words"), [
    ([[[0, 0], [10, 0], [10, 10], [0, 10]]], "not closed"),
    ([[[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]], "intersects itself"),
    ([[[0, 0], [5, 5], [10, 10], [0, 0]]], "zero area"),
    ([[[0, 0], [5, 5], [0, 0], [0, 0]]], "at least 3 distinct points"),
])
async def test_bad_polygons_are_422_naming_the_rule(client, coords, words):
    r = await client.post("/api/v1/zones", json=zone(geometry={"type": "Polygon", "coordinates": coords}))
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert words in r.json()["detail"], r.json()
    assert (await client.get("/api/v1/zones")).json()["total"] == 0, "nothing half-written"


@pytest.mark.parametrize("body", [
    zone(geometry={"type": "Point", "coordinates": [1, 2]}),
    zone(geometry=None),
    zone(geometry={"type": "Polygon", "coordinates": [[[0, 0], [1], [1, 1], [0, 0]]]}),
    zone(kind="garden"),
    zone(zone_id="bad id!"),
    zone(zone_id="stats"),
    zone(name=""),
    zone(extra="field"),
    {k: v for k, v in zone().items() if k != "geometry"} | {"x1": 0, "y1": 0},
    zone(x1=0, y1=0, x2=1, y2=0, x3=1, y3=1, x4=0, y4=1),
])
async def test_bad_shapes_and_fields_are_422(client, body):
    r = await client.post("/api/v1/zones", json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM


async def test_nan_coordinates_are_rejected(client):
    raw = ('{"zone_id": "Z", "name": "n", "geometry": {"type": "Polygon", '
           '"coordinates": [[[0, 0], [NaN, 0], [1, 1], [0, 0]]]}}')
    r = await client.post("/api/v1/zones", content=raw, headers={"content-type": "application/json"})
    assert r.status_code in (400, 422) and r.headers["content-type"] == PROBLEM


async def test_duplicate_and_unknown_zone(client):
    assert (await client.post("/api/v1/zones", json=zone())).status_code == 201
    r = await client.post("/api/v1/zones", json=zone(name="again"))
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    for method, extra in (("GET", {}), ("PATCH", {"json": {"name": "x"}}), ("DELETE", {}),
                          ("POST", {"json": {"points": [[1, 1]]}})):
        path = "/api/v1/zones/NOPE" + ("/contains" if method == "POST" else "")
        r = await client.request(method, path, **extra)
        assert r.status_code == 404, (method, r.text)
    assert (await client.patch("/api/v1/zones/ZONE_001", json={"name": None})).status_code == 422
    assert (await client.patch("/api/v1/zones/ZONE_001", json={"zone_id": "NEW"})).status_code == 422


async def test_contains_batch(client):
    concave = {"type": "Polygon", "coordinates": [[[0, 0], [4, 0], [4, 4], [2, 1], [0, 4], [0, 0]]]}
    await client.post("/api/v1/zones", json=zone("Z_V", geometry=concave))
    r = await client.post("/api/v1/zones/Z_V/contains", json={"points": [[1, 1], [2, 3], [0, 0], [5, 5]]})
    assert r.status_code == 200 and r.json() == {"inside": [True, False, True, False]}
    assert (await client.post("/api/v1/zones/Z_V/contains", json={"points": []})).json() == {"inside": []}
    big = [[0.5 + (i % 3), 0.5] for i in range(5000)]  # large batch: runs off the event loop
    assert (await client.post("/api/v1/zones/Z_V/contains", json={"points": big})).json()["inside"] == \
        [True, True, True] * 1666 + [True, True]
    for bad in ({"points": [[1]]}, {"points": [[1, 2, 3]]}, {"points": "x"}, {}):
        assert (await client.post("/api/v1/zones/Z_V/contains", json=bad)).status_code == 422


async def test_stats_and_delete_guard(client):
    await client.post("/api/v1/zones", json=zone("ZONE_A"))
    await client.post("/api/v1/zones", json=zone("ZONE_B", kind="detection"))
    for gid, zid in ((1, "ZONE_A"), (2, "ZONE_A"), (3, None)):
        assert (await client.post("/api/v1/people", json={"global_id": gid, "name": f"P{gid}", "zone_id": zid})
                ).status_code == 201
    stats = (await client.get("/api/v1/zones/stats")).json()
    assert {z["zone_id"]: z["people"] for z in stats["zones"]} == {"ZONE_A": 2, "ZONE_B": 0}
    assert stats["unassigned_people"] == 1 and stats["assigned_people"] == 2 and stats["total_zones"] == 2

    r = await client.delete("/api/v1/zones/ZONE_A")
    assert r.status_code == 409 and r.json()["people"] == 2 and "force=true" in r.json()["detail"]
    assert (await client.get("/api/v1/zones/ZONE_A")).status_code == 200
    assert (await client.delete("/api/v1/zones/ZONE_B")).status_code == 204, "an empty zone just goes"
    assert (await client.delete("/api/v1/zones/ZONE_A", params={"force": "true"})).status_code == 204
    people = (await client.get("/api/v1/people")).json()["items"]
    assert [p["zone_id"] for p in people] == [None, None, None]
    assert (await client.get("/api/v1/zones/stats")).json()["unassigned_people"] == 3


async def test_scopes(client, anon, make_key):
    read = await make_key("read")
    assert (await anon.get("/api/v1/zones")).status_code == 401
    assert (await anon.get("/api/v1/zones", headers=auth(read))).status_code == 200
    assert (await anon.post("/api/v1/zones", json=zone(), headers=auth(read))).status_code == 403
    write = await make_key("write")
    assert (await anon.post("/api/v1/zones", json=zone(), headers=auth(write))).status_code == 201


async def test_camera_id_must_be_an_existing_camera(client):
    unknown = str(uuid.uuid4())
    r = await client.post("/api/v1/zones", json=zone(camera_id=unknown))
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert r.json()["title"] == "Unknown camera" and unknown in r.json()["detail"]
    assert r.json()["errors"][0]["loc"] == ["body", "camera_id"]
    for malformed in ("cam-1", "", 42, "0000-not-a-uuid"):
        r = await client.post("/api/v1/zones", json=zone(camera_id=malformed))
        assert r.status_code == 422, (malformed, r.text)
        assert r.json()["errors"][0]["loc"] == ["body", "camera_id"]
    assert (await client.get("/api/v1/zones")).json()["total"] == 0, "nothing half-written"
    assert (await client.get("/api/v1/zones", params={"camera_id": "cam-1"})).status_code == 422

    cam = await make_camera(client)
    assert (await client.post("/api/v1/zones", json=zone())).status_code == 201
    for bad in (unknown, "cam-1"):
        r = await client.patch("/api/v1/zones/ZONE_001", json={"camera_id": bad, "name": "renamed"})
        assert r.status_code == 422, r.text
    after = (await client.get("/api/v1/zones/ZONE_001")).json()
    assert after["camera_id"] is None and after["name"] == "Zone ZONE_001"
    # Any spelling of a UUID is accepted and read back in canonical form.
    r = await client.patch("/api/v1/zones/ZONE_001", json={"camera_id": cam.upper().replace("-", "")})
    assert r.status_code == 200 and r.json()["camera_id"] == cam
    stats = (await client.get("/api/v1/zones/stats")).json()
    assert stats["zones"][0]["camera_id"] == cam


async def test_delete_guard_counts_cameras_and_sensors_and_force_clears_them(client):
    for zone_id in ("ZONE_A", "ZONE_B"):
        assert (await client.post("/api/v1/zones", json=zone(zone_id))).status_code == 201
    cam = await make_camera(client, zone_ids=["ZONE_A", "ZONE_B"])
    other = await make_camera(client, name="Yard", zone_ids=["ZONE_B"])
    sensors = []
    for name, zone_id in (("s", "ZONE_A"), ("k", "ZONE_B")):
        r = await client.post("/api/v1/sensors", json={"name": name, "camera_id": cam, "zone_id": zone_id})
        sensors.append(r.json()["id"])

    r = await client.delete("/api/v1/zones/ZONE_A")
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert (problem["people"], problem["cameras"], problem["sensors"]) == (0, 1, 1)
    assert "used by 1 camera, 1 sensor;" in problem["detail"] and "force=true" in problem["detail"]
    assert (await client.get(f"/api/v1/cameras/{cam}")).json()["zone_ids"] == ["ZONE_A", "ZONE_B"]

    assert (await client.delete("/api/v1/zones/ZONE_A", params={"force": "true"})).status_code == 204
    assert (await client.get("/api/v1/zones/ZONE_A")).status_code == 404
    assert (await client.get(f"/api/v1/cameras/{cam}")).json()["zone_ids"] == ["ZONE_B"], "other zones kept"
    assert (await client.get(f"/api/v1/cameras/{other}")).json()["zone_ids"] == ["ZONE_B"]
    assert [(await client.get(f"/api/v1/sensors/{s}")).json()["zone_id"] for s in sensors] == [None, "ZONE_B"]
    # The zone id is free again, and nothing still points at it.
    assert (await client.post("/api/v1/zones", json=zone("ZONE_A"))).status_code == 201
    assert (await client.get("/api/v1/cameras", params={"zone_id": "ZONE_A"})).json()["total"] == 0


async def test_no_reference_outlives_its_zone_under_concurrency(client, server):
    """Cameras and sensors naming a zone while it is force-deleted: each write either lands before the
    delete (and is cleared by it) or after (and is refused with 422), never a dangling reference."""
    cam = await make_camera(client)
    for i in range(8):
        zone_id = f"RACE_{i}"
        assert (await client.post("/api/v1/zones", json=zone(zone_id))).status_code == 201
        camera = {"rtsp_url": "rtsp://10.0.0.2/s", "fps": 10, "width": 64, "height": 64,
                  "zone_ids": [zone_id]}
        writes = [client.post("/api/v1/cameras", json=camera | {"name": f"c{i}-{j}"}) for j in range(3)]
        writes += [client.post("/api/v1/sensors", json={"name": f"s{i}-{j}", "camera_id": cam,
                                                        "zone_id": zone_id}) for j in range(3)]
        results = await asyncio.gather(client.delete(f"/api/v1/zones/{zone_id}", params={"force": "true"}),
                                       *writes)
        assert results[0].status_code == 204
        assert {r.status_code for r in results[1:]} <= {201, 422}, [r.text for r in results[1:]]
    async with server.ctx.engine.connect() as conn:
        dangling = await conn.scalar(text(
            "SELECT (SELECT count(*) FROM cameras c, unnest(c.zone_ids) AS z(zone_id)"
            "        WHERE NOT EXISTS (SELECT 1 FROM zones WHERE zones.zone_id = z.zone_id))"
            "     + (SELECT count(*) FROM sensors s WHERE s.zone_id IS NOT NULL"
            "        AND NOT EXISTS (SELECT 1 FROM zones WHERE zones.zone_id = s.zone_id))"))
    assert dangling == 0
