"""Blob storage on both backends: the local directory and S3 (moto's real server, over HTTP).

The `blob_backend` fixture runs each test once per backend by swapping the running server's store.
"""

from __future__ import annotations

import json
import os
import uuid

import httpx
import pytest
from sqlalchemy import delete

from tests.faces import images
from tests.faces.test_events import make_event
from tests.plates.helpers import event, image_bytes, make_camera
from vigil.core.storage import (
    LocalBlobStore,
    S3BlobStore,
    StorageUnavailable,
    content_key,
    delete_unreferenced,
    open_blob_store,
)
from vigil.plates import service as plates
from vigil.plates.models import PlateEvent

PLATES = "/api/v1/plates/events"


def multipart(ev: dict, **parts: bytes) -> dict:
    files = {name: (f"{name}.bin", data, "application/octet-stream") for name, data in parts.items()}
    files["event"] = (None, json.dumps(ev), "application/json")
    return files


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path, s3_settings):
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    return open_blob_store(s3_settings)


async def test_store_roundtrip_streams_and_refuses_escapes(store):
    data = os.urandom(700_000)  # several chunks when streamed
    key = content_key(data, prefix="tests/roundtrip", ext="bin")
    await store.check()
    assert not await store.exists(key)
    await store.put(key, data)
    await store.put(key, data)  # same content, same key: harmless
    assert await store.exists(key) and await store.get(key) == data
    body = await store.open(key)
    chunks = [c async for c in body.chunks]
    assert body.size == len(data) and b"".join(chunks) == data and len(chunks) > 1
    with pytest.raises(FileNotFoundError):
        await store.open(f"tests/missing/{uuid.uuid4()}.bin")
    with pytest.raises(FileNotFoundError):
        await store.get(f"tests/missing/{uuid.uuid4()}.bin")
    other = content_key(b"other", prefix="tests/roundtrip", ext="bin")
    await store.put(other, b"other")
    await store.delete_many([key, other, "tests/never/written.bin"])  # a missing key is no error
    assert not await store.exists(key) and not await store.exists(other)
    await store.delete(key)
    for bad in ("../outside", "/abs/key", "a/../../b", ""):
        with pytest.raises(ValueError):
            await store.put(bad, b"x")


async def test_presigned_url_serves_the_object_and_local_has_none(store):
    data = b"presigned bytes"
    key = content_key(data, prefix="tests/presign", ext="txt")
    await store.put(key, data)
    url = await store.presign(key, expires_s=60)
    if store.backend == "local":
        assert url is None
        return
    async with httpx.AsyncClient() as c:
        r = await c.get(url)
    assert r.status_code == 200 and r.content == data
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=60" in url


async def test_health_names_the_backend(client, blob_backend):
    storage = (await client.get("/health")).json()["checks"]["storage"]
    assert storage["status"] == "ok" and storage["backend"] == blob_backend.backend
    assert storage["latency_ms"] is not None


async def test_plate_images_round_trip_on_each_backend(client, blob_backend):
    cam = await make_camera(client)
    frame, crop = image_bytes("JPEG", (320, 240), (1, 2, 3)), image_bytes("PNG", (60, 20), (4, 5, 6))
    r = await client.post(PLATES, files=multipart(event(cam), frame=frame, crop=crop))
    assert r.status_code == 201, r.text
    body = r.json()
    assert await blob_backend.exists(content_key(frame, prefix="plates/frames", ext="jpg"))
    f = await client.get(body["frame_url"])
    assert f.status_code == 200 and f.content == frame and f.headers["content-type"] == "image/jpeg"
    assert f.headers["content-length"] == str(len(frame))
    c = await client.get(body["crop_url"])
    assert c.status_code == 200 and c.content == crop and c.headers["content-type"] == "image/png"


async def test_presign_answers_307_on_s3_and_bytes_on_local(client, blob_backend, presign):
    cam = await make_camera(client)
    frame = image_bytes("JPEG", (100, 80), (11, 12, 13))
    body = (await client.post(PLATES, files=multipart(event(cam), frame=frame))).json()
    r = await client.get(body["frame_url"])
    if blob_backend.backend == "local":  # a directory cannot sign URLs: the bytes come from the app
        assert r.status_code == 200 and r.content == frame
        return
    assert r.status_code == 307 and r.headers["cache-control"] == "private, no-store"
    async with httpx.AsyncClient() as anon:  # no API key: the signature is the credential
        direct = await anon.get(r.headers["location"])
    assert direct.status_code == 200 and direct.content == frame
    # Faces files too.
    await make_event(client)
    image = (await client.post("/api/v1/faces/images", data={"event_code": "wedding-2026"},
                               files={"file": ("c.jpg", images.coffee(), "image/jpeg")})).json()
    r = await client.get(f"/api/v1/faces/images/{image['id']}/file")
    assert r.status_code == 307
    async with httpx.AsyncClient() as anon:
        assert (await anon.get(r.headers["location"])).content == images.coffee()


async def test_a_shared_blob_is_deleted_only_with_its_last_reference(server, client, blob_backend):
    cam = await make_camera(client)
    frame = image_bytes("JPEG", (90, 60), (21, 22, 23))
    key = content_key(frame, prefix="plates/frames", ext="jpg")
    ids = []
    for uid in ("shared-1", "shared-2"):
        r = await client.post(PLATES, files=multipart(event(cam, event_uid=uid), frame=frame))
        assert r.status_code == 201
        ids.append(uuid.UUID(r.json()["id"]))

    async def drop_row(event_id: uuid.UUID) -> int:
        async with server.ctx.sessionmaker() as session, session.begin():
            await session.execute(delete(PlateEvent).where(PlateEvent.id == event_id))
        return await delete_unreferenced(server.ctx.sessionmaker, blob_backend, [key],
                                         referenced=plates.referenced_keys)

    assert await drop_row(ids[0]) == 0
    assert await blob_backend.exists(key)
    assert (await client.get(f"{PLATES}/{ids[1]}/frame")).content == frame
    assert await drop_row(ids[1]) == 1
    assert not await blob_backend.exists(key)


async def test_s3_down_is_503_with_retry_after(server, client, s3_settings):
    cam = await make_camera(client)
    frame = image_bytes("JPEG", (50, 50), (31, 32, 33))
    body = (await client.post(PLATES, files=multipart(event(cam), frame=frame))).json()
    before = server.ctx.storage
    # A port nothing listens on: connection refused, as when the S3 service is down.
    from vigil.core.devstack import free_port

    server.ctx.storage = S3BlobStore(bucket="nowhere", endpoint_url=f"http://127.0.0.1:{free_port()}",
                                     access_key_id="x", secret_access_key="y", region="us-east-1", timeout_s=2)
    try:
        r = await client.get(body["frame_url"])
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert r.headers["content-type"] == "application/problem+json"
        up = await client.post(PLATES, files=multipart(event(cam, event_uid="while-down"), frame=frame))
        assert up.status_code == 503
        health = (await client.get("/health")).json()
        assert health["status"] == "degraded" and health["checks"]["storage"]["status"] == "down"
        assert health["checks"]["storage"]["backend"] == "s3"
        with pytest.raises(StorageUnavailable):
            await server.ctx.storage.put("tests/x.bin", b"x")
    finally:
        server.ctx.storage = before
    # Nothing half-written: the refused ingest left no row.
    assert (await client.get(PLATES)).json()["total"] == 1
