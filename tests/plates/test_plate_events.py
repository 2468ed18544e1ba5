"""Plate ingest, search, stats and images through the real server."""

import json
import uuid
from pathlib import Path

from tests.conftest import auth
from tests.plates.helpers import event, image_bytes, make_camera, png_bomb

URL = "/api/v1/plates/events"


def multipart(ev: dict | None, **images: bytes) -> dict:
    files = {name: (f"{name}.bin", data, "application/octet-stream") for name, data in images.items()}
    if ev is not None:
        files["event"] = (None, json.dumps(ev), "application/json")
    return files


def blob_files(server) -> set[Path]:
    """Blobs persist across tests (tables are truncated, files are not): compare before and after."""
    root = Path(server.ctx.storage.root) / "plates"
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


async def total(client, **params) -> int:
    return (await client.get(URL, params=params)).json()["total"]


async def test_json_ingest_then_read(client):
    cam = await make_camera(client)
    r = await client.post(
        URL,
        json=event(
            cam,
            region="nl",
            vehicle={"type": "car", "color": "red", "year": 2019},
            tpms={"fl": 2.3},
            bbox=[10, 20, 120, 40],
        ),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["plate"] == "AB-123 c" and body["plate_normalized"] == "AB123C"
    assert body["vehicle"] == {"type": "car", "color": "red", "year": 2019} and body["tpms"] == {"fl": 2.3}
    assert body["bbox"] == [10, 20, 120, 40] and body["frame_url"] is None and body["crop_url"] is None
    assert body["captured_at"] == "2026-11-20T10:15:00Z"
    got = await client.get(f"{URL}/{body['id']}")
    assert got.status_code == 200 and got.json() == body
    assert (await client.get(f"{URL}/{body['id']}/frame")).status_code == 404


async def test_multipart_ingest_stores_images_content_addressed(server, client):
    cam = await make_camera(client)
    before = blob_files(server)
    frame, crop = image_bytes("JPEG", (320, 240), (9, 9, 9)), image_bytes("WEBP", (80, 30), (8, 8, 8))
    r = await client.post(URL, files=multipart(event(cam, event_uid="dev-1"), frame=frame, crop=crop))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["frame_url"] == f"{URL}/{body['id']}/frame" and body["crop_url"] == f"{URL}/{body['id']}/crop"
    f = await client.get(body["frame_url"])
    assert f.status_code == 200 and f.content == frame and f.headers["content-type"] == "image/jpeg"
    c = await client.get(body["crop_url"])
    assert c.content == crop and c.headers["content-type"] == "image/webp"
    # The same frame again is one blob, not two.
    r2 = await client.post(URL, files=multipart(event(cam, event_uid="dev-2"), frame=frame))
    assert r2.status_code == 201
    assert len(blob_files(server) - before) == 2


async def test_repeated_event_uid_returns_the_first_event(server, client):
    cam = await make_camera(client)
    before = blob_files(server)
    first = await client.post(
        URL, files=multipart(event(cam, event_uid="cam1-0001"), frame=image_bytes(color=(7, 7, 7)))
    )
    assert first.status_code == 201
    again = await client.post(
        URL,
        files=multipart(event(cam, event_uid="cam1-0001", plate="ZZ999"), frame=image_bytes(color=(1, 2, 3))),
    )
    assert again.status_code == 200 and again.json() == first.json()
    as_json = await client.post(URL, json=event(cam, event_uid="cam1-0001"))
    assert as_json.status_code == 200 and as_json.json()["id"] == first.json()["id"]
    assert await total(client) == 1 and len(blob_files(server) - before) == 1


async def test_bad_input_is_a_clear_4xx_and_stores_nothing(server, client, stack):
    cam = await make_camera(client)
    before = blob_files(server)
    big = b"\xff" * (server.app.state.settings.plate_image_max_bytes + 1)
    cases = [
        ({"files": multipart(None, frame=image_bytes())}, 422),  # no event part
        ({"files": multipart(event(cam), photo=image_bytes())}, 422),  # unknown part
        ({"json": event(str(uuid.uuid4()))}, 422),  # unknown camera
        ({"json": event(cam, confidence=1.5)}, 422),
        ({"json": event(cam, confidence=-0.1)}, 422),
        ({"json": event(cam, captured_at="2026-11-20T10:15:00")}, 422),  # no time zone
        ({"json": event(cam, captured_at="0001-01-01T00:00:00+05:00")}, 422),  # year 0 in UTC
        ({"json": event(cam, captured_at="9999-12-31T23:59:59-05:00")}, 422),  # year 10000 in UTC
        # The driver stores the first and last instants Python has as -infinity / infinity.
        ({"json": event(cam, captured_at="9999-12-31T23:59:59.999999Z")}, 422),
        ({"json": event(cam, captured_at="0001-01-01T00:00:00Z")}, 422),
        ({"files": multipart(event(cam, captured_at="0001-01-01T00:00:00+05:00"))}, 422),
        ({"content": json.dumps(event(cam)).replace("}", ', "bbox": [1, 2, NaN, 4]}'),
              "headers": {"content-type": "application/json"}}, 422),
        ({"json": event(cam, plate="--")}, 422),
        ({"json": event(cam, plate="ß" * 50)}, 422),  # "SS" * 50 normalised: longer than the column
        ({"json": event(cam, bbox=[1, 2, 3])}, 422),
        ({"json": event(cam, extra="x")}, 422),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400),
        ({"content": b"plate=AB123", "headers": {"content-type": "text/plain"}}, 415),
        ({"files": multipart(event(cam), frame=b"definitely not an image")}, 415),
        ({"files": multipart(event(cam), frame=image_bytes(color=(5, 6, 7)), crop=image_bytes("GIF"))}, 415),
        ({"files": multipart(event(cam), frame=big)}, 413),
        ({"files": multipart(event(cam), frame=png_bomb())}, 413),
        ({"files": multipart(event(cam), crop=png_bomb(8000, 6000))}, 413),
    ]
    for kwargs, status in cases:
        r = await client.post(URL, **kwargs)
        assert r.status_code == status, (status, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    assert await total(client) == 0 and blob_files(server) == before


async def test_ingest_scope(client, anon, make_key):
    cam = await make_camera(client)
    ingest, read = await make_key("ingest"), await make_key("read")
    assert (await anon.post(URL, json=event(cam), headers=auth(ingest))).status_code == 201
    assert (await anon.post(URL, json=event(cam), headers=auth(read))).status_code == 403
    assert (await anon.get(URL, headers=auth(ingest))).status_code == 403
    assert (await anon.get(URL, headers=auth(read))).json()["total"] == 1


async def test_filters_and_fuzzy_search(client):
    north, south = await make_camera(client, "North"), await make_camera(client, "South")
    rows = [
        (north, "AB123C", 0.9, "2026-11-20T10:00:00Z"),
        (north, "ab-123-c", 0.5, "2026-11-20T11:00:00Z"),
        (south, "AB128C", 0.95, "2026-11-20T12:00:00Z"),
        (south, "XY999", 0.99, "2026-11-20T13:00:00Z"),
        (north, "AB12C", 0.7, "2026-11-20T14:00:00Z"),
        (south, "B123CA", 0.8, "2026-11-20T15:00:00Z"),
    ]
    for cam, plate, conf, at in rows:
        assert (
            await client.post(URL, json=event(cam, plate=plate, confidence=conf, captured_at=at))
        ).status_code == 201

    async def plates(**params):
        body = (await client.get(URL, params=params)).json()
        return [e["plate"] for e in body["items"]]

    assert await plates(plate="ab 123c") == ["ab-123-c", "AB123C"]  # newest first
    assert await plates(plate="AB123C", camera_id=south) == []
    assert await plates(plate="ab123c", min_confidence=0.8) == ["AB123C"]
    assert await plates(since="2026-11-20T12:00:00Z", until="2026-11-20T14:00:00Z") == ["XY999", "AB128C"]
    assert await plates(plate="AB123C", max_distance=1) == ["AB12C", "AB128C", "ab-123-c", "AB123C"]
    assert await plates(plate="AB123C", max_distance=2) == ["B123CA", "AB12C", "AB128C", "ab-123-c", "AB123C"]
    assert await plates(plate="AB123C", max_distance=1, camera_id=north) == ["AB12C", "ab-123-c", "AB123C"]
    assert await plates(camera_id=south, limit=1) == ["B123CA"]
    for bad in (
        {"max_distance": 1},
        {"plate": "AB", "max_distance": 4},
        {"min_confidence": 2},
        {"plate": "--"},
        {"since": "yesterday"},
        {"limit": 501},
    ):
        assert (await client.get(URL, params=bad)).status_code == 422, bad
    assert (await client.get(f"{URL}/{uuid.uuid4()}")).status_code == 404
    assert (await client.get(f"{URL}/{uuid.uuid4()}/crop")).status_code == 404


async def test_stats(client):
    north, south = await make_camera(client, "North"), await make_camera(client, "South")
    rows = [
        (north, "AB123C", 0.9, "2026-11-20T10:05:00Z"),
        (north, "ab-123-c", 0.5, "2026-11-20T10:55:00Z"),
        (south, "XY999", 0.7, "2026-11-20T11:30:00+01:00"),
        (south, "AB123C", 0.6, "2026-11-20T12:00:00Z"),
        (south, "OLD1", 0.1, "2026-11-19T00:00:00Z"),
    ]
    for cam, plate, conf, at in rows:
        assert (
            await client.post(URL, json=event(cam, plate=plate, confidence=conf, captured_at=at))
        ).status_code == 201
    r = await client.get(
        "/api/v1/plates/stats", params={"since": "2026-11-20T00:00:00Z", "until": "2026-11-21T00:00:00Z"}
    )
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["total"] == 4 and s["avg_confidence"] == 0.675
    assert [(c["camera_name"], c["count"]) for c in s["by_camera"]] == [("North", 2), ("South", 2)] or [
        (c["camera_name"], c["count"]) for c in s["by_camera"]
    ] == [("South", 2), ("North", 2)]
    assert [(h["hour"], h["count"]) for h in s["by_hour"]] == [
        ("2026-11-20T10:00:00Z", 3),
        ("2026-11-20T12:00:00Z", 1),
    ]
    assert [(p["plate"], p["count"]) for p in s["top_plates"]] == [("AB123C", 3), ("XY999", 1)]
    everything = (await client.get("/api/v1/plates/stats", params={"top": 1})).json()
    assert everything["total"] == 5 and len(everything["top_plates"]) == 1
    empty = (await client.get("/api/v1/plates/stats", params={"since": "2030-01-01T00:00:00Z"})).json()
    assert empty == {
        "since": "2030-01-01T00:00:00Z",
        "until": None,
        "total": 0,
        "by_camera": [],
        "by_hour": [],
        "top_plates": [],
        "avg_confidence": None,
    }
    assert (
        await client.get(
            "/api/v1/plates/stats", params={"since": "2026-11-21T00:00:00Z", "until": "2026-11-20T00:00:00Z"}
        )
    ).status_code == 422
    # A filter without an offset means UTC, also next to one with an offset.
    mixed = await client.get(
        "/api/v1/plates/stats", params={"since": "2026-11-20T00:00:00", "until": "2026-11-21T00:00:00Z"}
    )
    assert mixed.status_code == 200 and mixed.json()["total"] == 4, mixed.text
    assert mixed.json()["since"] == "2026-11-20T00:00:00Z"
    # As filters, the first and last instants are fine ("from the beginning").
    everything = {"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59.999999Z"}
    r = await client.get("/api/v1/plates/stats", params=everything)
    assert r.status_code == 200 and r.json()["total"] == 5, r.text
    for url in ("/api/v1/plates/stats", URL):
        for bad in ({"since": "0001-01-01T00:00:00+05:00"}, {"until": "9999-12-31T23:59:59-05:00"}):
            r = await client.get(url, params=bad)
            assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
            assert [["query", *bad]] == [e["loc"] for e in r.json()["errors"]]


async def test_camera_with_events_cannot_be_deleted(client):
    cam = await make_camera(client)
    await client.post(URL, json=event(cam))
    r = await client.delete(f"/api/v1/cameras/{cam}")
    assert r.status_code == 409
    assert (await client.get(f"/api/v1/cameras/{cam}")).status_code == 200


async def test_ingest_claims_its_blob_keys_so_a_deleter_holding_one_makes_it_wait(server, client):
    """Ingest takes a shared lock on each blob key before writing it (folded into its first query): a
    purge holding the key's exclusive lock (deciding whether the blob is still referenced) makes the
    ingest wait, so the purge can never delete a blob between the ingest's write and its commit."""
    import asyncio

    from sqlalchemy import text

    from vigil.core.db import session_scope
    from vigil.core.storage import blob_lock_id, content_key

    cam = await make_camera(client)
    frame = image_bytes("PNG", (40, 20), (1, 2, 3))
    key = content_key(frame, prefix="plates/frames", ext="png")
    async with session_scope(server.ctx.sessionmaker) as deleter:
        await deleter.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": blob_lock_id(key)})
        ingest = asyncio.create_task(client.post(URL, files=multipart(event(cam, event_uid="claimed"), frame=frame)))
        waiting = 0
        for _ in range(200):
            waiting = await deleter.scalar(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND (classid::bigint << 32) + objid::bigint = (:id)::bigint & x'ffffffffffffffff'::bigint"),
                {"id": blob_lock_id(key)})
            if waiting or ingest.done():
                break
            await asyncio.sleep(0.05)
        assert waiting == 1 and not ingest.done()
        # The claim comes before the write: while the deleter decides, the blob is not there yet.
        assert not await server.ctx.storage.exists(key)
    r = await ingest  # the deleter committed: the ingest goes on
    assert r.status_code == 201, r.text
    assert (await client.get(r.json()["frame_url"])).content == frame
