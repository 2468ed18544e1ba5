"""Cameras, model configs and sensors through the real server: CRUD, validation, RTSP password masking,
zone references (`zone_ids`, a sensor's `zone_id`) checked against the zones."""

import uuid

import pytest_asyncio
from loguru import logger

from tests.conftest import auth

PASSWORD = "Sup3r-Secret-pw"
CAMERA = {
    "name": "Gate 1",
    "rtsp_url": f"rtsp://admin:{PASSWORD}@10.0.0.21:554/stream1",
    "fps": 25,
    "width": 1920,
    "height": 1080,
    "location": {"lat": 52.37, "lon": 4.89},
    "zone_ids": ["ZONE_001"],
}


SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]]}


async def create_camera(client, **kw):
    r = await client.post("/api/v1/cameras", json=CAMERA | kw)
    assert r.status_code == 201, r.text
    return r.json()


async def create_zones(client, *zone_ids: str) -> None:
    for zone_id in zone_ids:
        r = await client.post("/api/v1/zones", json={"zone_id": zone_id, "name": zone_id, "geometry": SQUARE})
        assert r.status_code == 201, r.text


@pytest_asyncio.fixture(loop_scope="session")
async def zones(client):
    """The zones the cameras and sensors below refer to."""
    await create_zones(client, "ZONE_001", "Z1", "Z2", "Z3")


async def test_camera_crud_masks_password_everywhere(client, zones):
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG")
    try:
        cam = await create_camera(client)
        assert cam["rtsp_url"] == "rtsp://admin:***@10.0.0.21:554/stream1"
        assert cam["location"] == {"lat": 52.37, "lon": 4.89} and cam["enabled"] is True
        got = await client.get(f"/api/v1/cameras/{cam['id']}")
        listed = await client.get("/api/v1/cameras")
        patched = await client.patch(f"/api/v1/cameras/{cam['id']}", json={"fps": 10, "location": None})
        for r in (got, listed, patched):
            assert r.status_code == 200 and PASSWORD not in r.text and "admin:***@" in r.text
        assert patched.json()["fps"] == 10 and patched.json()["location"] is None
        # A bad URL with a password in it is rejected without echoing the password.
        bad = await client.post(
            "/api/v1/cameras", json=CAMERA | {"name": "x", "rtsp_url": f"ftp://u:{PASSWORD}@h/"}
        )
        assert bad.status_code == 422 and PASSWORD not in bad.text
    finally:
        logger.remove(sink)
    assert lines and not any(PASSWORD in line for line in lines)


async def test_masked_url_sent_back_keeps_the_stored_password(server, client, zones):
    from vigil.cameras.models import Camera

    cam = await create_camera(client)
    r = await client.patch(
        f"/api/v1/cameras/{cam['id']}", json={"rtsp_url": cam["rtsp_url"].replace("stream1", "s2")}
    )
    assert r.status_code == 200 and r.json()["rtsp_url"] == "rtsp://admin:***@10.0.0.21:554/s2"
    async with server.ctx.sessionmaker() as session:
        stored = await session.get(Camera, uuid.UUID(cam["id"]))
        assert stored.rtsp_url == f"rtsp://admin:{PASSWORD}@10.0.0.21:554/s2"
    moved = await client.patch(
        f"/api/v1/cameras/{cam['id']}", json={"rtsp_url": "rtsp://admin:***@evil.example/x"}
    )
    assert moved.status_code == 422


async def test_camera_validation_and_conflicts(client, zones):
    await create_camera(client)
    dup = await client.post("/api/v1/cameras", json=CAMERA)
    assert dup.status_code == 409 and dup.headers["content-type"] == "application/problem+json"
    bad_inputs = [
        {"fps": 0},
        {"fps": 121},
        {"width": 0},
        {"height": -1},
        {"location": {"lat": 91, "lon": 0}},
        {"location": {"lat": 0, "lon": -181}},
        {"rtsp_url": "ftp://h/x"},
        {"rtsp_url": "rtsp://"},
        {"zone_ids": [""]},
        {"name": ""},
        {"unknown": 1},
    ]
    for i, bad in enumerate(bad_inputs):
        r = await client.post("/api/v1/cameras", json=CAMERA | {"name": f"cam-{i}"} | bad)
        assert r.status_code == 422, (bad, r.text)
    cam = await create_camera(client, name="Gate 2", zone_ids=["Z2", "Z2", "Z3"], enabled=False)
    assert cam["zone_ids"] == ["Z2", "Z3"]
    for bad in ({"fps": None}, {"name": None}, {"fps": 500}):
        assert (await client.patch(f"/api/v1/cameras/{cam['id']}", json=bad)).status_code == 422
    assert (await client.patch(f"/api/v1/cameras/{cam['id']}", json={"name": "Gate 1"})).status_code == 409
    assert (await client.get(f"/api/v1/cameras/{uuid.uuid4()}")).status_code == 404
    assert (await client.patch(f"/api/v1/cameras/{uuid.uuid4()}", json={"fps": 5})).status_code == 404
    assert (await client.delete(f"/api/v1/cameras/{uuid.uuid4()}")).status_code == 404


async def test_camera_filters_and_delete(client, zones):
    a = await create_camera(client, name="North", zone_ids=["Z1"])
    await create_camera(client, name="South", zone_ids=["Z2"], enabled=False)

    async def names(**params):
        body = (await client.get("/api/v1/cameras", params=params)).json()
        return [c["name"] for c in body["items"]]

    assert await names() == ["North", "South"]
    assert await names(enabled="false") == ["South"]
    assert await names(zone_id="Z1") == ["North"]
    assert await names(q="sou") == ["South"]
    assert (await client.delete(f"/api/v1/cameras/{a['id']}")).status_code == 204
    assert await names() == ["South"]


async def test_models_crud(client):
    body = {
        "name": "plate-detector",
        "kind": "detector",
        "version": "1.2.0",
        "weights_uri": "s3://models/pd.onnx",
        "params": {"threshold": 0.4},
    }
    r = await client.post("/api/v1/models", json=body)
    assert r.status_code == 201, r.text
    model = r.json()
    assert model["params"] == {"threshold": 0.4}
    assert (await client.post("/api/v1/models", json=body)).status_code == 409
    other = (await client.post("/api/v1/models", json=body | {"version": "1.3.0", "kind": "ocr"})).json()
    assert (await client.patch(f"/api/v1/models/{other['id']}", json={"version": "1.2.0"})).status_code == 409
    for bad in ({"kind": "magic"}, {"version": ""}, {"weights_uri": ""}, {"params": []}):
        assert (await client.post("/api/v1/models", json=body | {"version": "9"} | bad)).status_code == 422
    patched = await client.patch(f"/api/v1/models/{model['id']}", json={"params": {"threshold": 0.5}})
    assert patched.status_code == 200 and patched.json()["params"] == {"threshold": 0.5}
    listed = (await client.get("/api/v1/models", params={"kind": "ocr"})).json()
    assert [m["version"] for m in listed["items"]] == ["1.3.0"]
    assert (await client.delete(f"/api/v1/models/{model['id']}")).status_code == 204
    assert (await client.get(f"/api/v1/models/{model['id']}")).status_code == 404


async def test_sensors_crud_and_camera_reference(client, anon, make_key, zones):
    cam = await create_camera(client)
    body = {
        "name": "gate-1-entry",
        "camera_id": cam["id"],
        "zone_id": "ZONE_001",
        "settings": {"direction": "in"},
    }
    r = await client.post("/api/v1/sensors", json=body)
    assert r.status_code == 201, r.text
    sensor = r.json()
    assert (await client.post("/api/v1/sensors", json=body)).status_code == 409
    unknown = await client.post("/api/v1/sensors", json=body | {"name": "x", "camera_id": str(uuid.uuid4())})
    assert unknown.status_code == 422
    assert (
        await client.patch(f"/api/v1/sensors/{sensor['id']}", json={"camera_id": str(uuid.uuid4())})
    ).status_code == 422
    patched = await client.patch(f"/api/v1/sensors/{sensor['id']}", json={"zone_id": None})
    assert patched.status_code == 200 and patched.json()["zone_id"] is None
    assert (await client.get("/api/v1/sensors", params={"camera_id": cam["id"]})).json()["total"] == 1
    # Scopes: read keys read, cannot write.
    read = await make_key("read")
    assert (await anon.get("/api/v1/sensors", headers=auth(read))).status_code == 200
    assert (await anon.post("/api/v1/sensors", json=body, headers=auth(read))).status_code == 403
    # Deleting the camera takes its sensors with it.
    assert (await client.delete(f"/api/v1/cameras/{cam['id']}")).status_code == 204
    assert (await client.get(f"/api/v1/sensors/{sensor['id']}")).status_code == 404


async def test_unknown_zones_are_422_naming_them(client, zones):
    r = await client.post("/api/v1/cameras", json=CAMERA | {"zone_ids": ["Z1", "NOPE_1", "Z2", "NOPE_2"]})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["title"] == "Unknown zone" and problem["missing_zone_ids"] == ["NOPE_1", "NOPE_2"]
    assert "NOPE_1" in problem["detail"] and "NOPE_2" in problem["detail"] and "Z1" not in problem["detail"]
    assert [e["loc"] for e in problem["errors"]] == [["body", "zone_ids", 1], ["body", "zone_ids", 3]]
    assert (await client.get("/api/v1/cameras")).json()["total"] == 0, "nothing written"

    cam = await create_camera(client, zone_ids=["Z1"])
    r = await client.patch(f"/api/v1/cameras/{cam['id']}", json={"zone_ids": ["Z2", "GONE"], "fps": 5})
    assert r.status_code == 422 and r.json()["missing_zone_ids"] == ["GONE"]
    unchanged = (await client.get(f"/api/v1/cameras/{cam['id']}")).json()
    assert unchanged["zone_ids"] == ["Z1"] and unchanged["fps"] == CAMERA["fps"]
    r = await client.patch(f"/api/v1/cameras/{cam['id']}", json={"zone_ids": ["Z3", "Z2"]})
    assert r.status_code == 200 and r.json()["zone_ids"] == ["Z3", "Z2"]
    assert (await client.patch(f"/api/v1/cameras/{cam['id']}", json={"zone_ids": []})).json()[
        "zone_ids"
    ] == []

    body = {"name": "s1", "camera_id": cam["id"], "zone_id": "NOPE"}
    r = await client.post("/api/v1/sensors", json=body)
    assert r.status_code == 422 and r.json()["missing_zone_ids"] == ["NOPE"]
    assert r.json()["errors"][0]["loc"] == ["body", "zone_id"]
    sensor = (await client.post("/api/v1/sensors", json=body | {"zone_id": "Z1"})).json()
    r = await client.patch(f"/api/v1/sensors/{sensor['id']}", json={"zone_id": "NOPE"})
    assert r.status_code == 422 and r.json()["missing_zone_ids"] == ["NOPE"]
    assert (await client.get(f"/api/v1/sensors/{sensor['id']}")).json()["zone_id"] == "Z1"
    r = await client.patch(f"/api/v1/sensors/{sensor['id']}", json={"zone_id": "Z2"})
    assert r.status_code == 200 and r.json()["zone_id"] == "Z2"


async def test_deleting_a_camera_detaches_its_zones(client):
    cam = await create_camera(client, zone_ids=[])
    r = await client.post(
        "/api/v1/zones", json={"zone_id": "Z_CAM", "name": "z", "geometry": SQUARE, "camera_id": cam["id"]}
    )
    assert r.status_code == 201 and r.json()["camera_id"] == cam["id"]
    assert (await client.delete(f"/api/v1/cameras/{cam['id']}")).status_code == 204
    zone = await client.get("/api/v1/zones/Z_CAM")
    assert zone.status_code == 200 and zone.json()["camera_id"] is None
