"""Image uploads: faces stored with their vectors, dedupe per event, files, deletes, bad input."""

from __future__ import annotations

import io
import uuid

import numpy as np
from PIL import Image
from sqlalchemy import text

from tests.faces import images
from tests.faces.test_events import make_event
from vigil.core.storage import content_key

IMAGES = "/api/v1/faces/images"


async def upload(client, data: bytes, event_code: str = "wedding-2026", name: str = "photo.jpg",
                 content_type: str = "image/jpeg"):
    return await client.post(IMAGES, data={"event_code": event_code}, files={"file": (name, data, content_type)})


def blob_key(event: dict, data: bytes, ext: str = "jpg") -> str:
    return content_key(data, prefix=f"faces/{event['id']}", ext=ext)


async def test_upload_stores_image_faces_and_file(server, client):
    event = await make_event(client)
    r = await upload(client, images.astronaut(), name="astronaut.jpg")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["event_code"] == "wedding-2026" and (body["width"], body["height"]) == (512, 512)
    assert body["content_type"] == "image/jpeg" and body["filename"] == "astronaut.jpg"
    assert body["size_bytes"] == len(images.astronaut()) and body["taken_at"] is None
    assert body["faces"], "the astronaut's face is found"
    face = body["faces"][0]
    assert images.near(face["bbox"], images.ASTRONAUT_FACE)
    assert face["model"] == "dlib_resnet_v1" and face["alignment"] == "dlib_5pt_chip150"

    async with server.ctx.engine.connect() as conn:
        row = (await conn.execute(text("SELECT vector_dims(embedding), model FROM faces WHERE id = :id"),
                                  {"id": face["id"]})).one()
    assert tuple(row) == (128, "dlib_resnet_v1")

    got = await client.get(f"{IMAGES}/{body['id']}")
    assert got.status_code == 200 and got.json() == body
    file = await client.get(f"{IMAGES}/{body['id']}/file")
    assert file.status_code == 200 and file.content == images.astronaut()
    assert file.headers["content-type"] == "image/jpeg"
    assert await server.ctx.storage.exists(blob_key(event, images.astronaut()))


async def test_same_file_twice_in_one_event_is_stored_once(server, client):
    await make_event(client)
    await make_event(client, code="other")
    first = await upload(client, images.coffee())
    again = await upload(client, images.coffee(), name="renamed.jpg")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    elsewhere = await upload(client, images.coffee(), event_code="other")
    assert elsewhere.status_code == 201 and elsewhere.json()["id"] != first.json()["id"]
    listed = (await client.get(IMAGES, params={"event_code": "wedding-2026"})).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == first.json()["id"]
    assert (await client.get(IMAGES)).json()["total"] == 2


async def test_photo_without_faces_is_stored_with_none(client):
    await make_event(client)
    r = await upload(client, images.coffee())
    assert r.status_code == 201 and r.json()["faces"] == [] and (r.json()["width"], r.json()["height"]) == (600, 400)


async def test_exif_orientation_and_capture_time(client):
    await make_event(client)
    upright = images.astronaut_pixels()[:, 40:440]
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to display
    exif.get_ifd(0x8769).update({0x9003: "2026:06:01 15:04:05", 0x9011: "+02:00"})
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(np.rot90(upright))).save(out, "JPEG", exif=exif, quality=90)
    r = await upload(client, out.getvalue())
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["width"], body["height"]) == (400, 512)
    assert body["taken_at"] == "2026-06-01T13:04:05Z"
    assert body["faces"] and images.near(body["faces"][0]["bbox"], (135, 76, 91, 91))


async def test_delete_removes_image_faces_and_file(server, client, blob_backend):
    event = await make_event(client)
    image = (await upload(client, images.astronaut())).json()
    assert (await client.delete(f"{IMAGES}/{image['id']}")).status_code == 204
    assert (await client.get(f"{IMAGES}/{image['id']}")).status_code == 404
    assert (await client.get(f"{IMAGES}/{image['id']}/file")).status_code == 404
    assert (await client.delete(f"{IMAGES}/{image['id']}")).status_code == 404
    assert not await server.ctx.storage.exists(blob_key(event, images.astronaut()))
    async with server.ctx.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM faces")) == 0
    # Deleted means gone: the same bytes can be uploaded again as a new image.
    assert (await upload(client, images.astronaut())).status_code == 201


async def test_deleting_the_event_removes_its_images_and_files(server, client, blob_backend):
    event = await make_event(client)
    image = (await upload(client, images.coffee())).json()
    assert (await client.delete(f"/api/v1/faces/events/{event['code']}")).status_code == 204
    assert (await client.get(f"{IMAGES}/{image['id']}")).status_code == 404
    assert not await server.ctx.storage.exists(blob_key(event, images.coffee()))


async def test_list_filters_and_pagination(client):
    await make_event(client)
    await make_event(client, code="other")
    await upload(client, images.coffee())
    await upload(client, images.variants()["png"], name="a.png", content_type="image/png")
    await upload(client, images.coffee(), event_code="other")
    page = (await client.get(IMAGES, params={"event_code": "wedding-2026", "limit": 1})).json()
    assert page["total"] == 2 and len(page["items"]) == 1 and page["items"][0]["content_type"] == "image/png"
    assert page["items"][0]["faces"], "list items carry their faces"
    assert (await client.get(IMAGES, params={"event_code": "nope"})).status_code == 404
    assert (await client.get(IMAGES, params={"cluster_id": str(uuid.uuid4())})).json()["total"] == 0
    assert (await client.get(IMAGES, params={"cluster_id": "not-a-uuid"})).status_code == 422


async def test_bad_uploads(client):
    await make_event(client)
    await make_event(client, code="stopped", running=False)

    async def status(data: bytes, **kw) -> tuple[int, str]:
        r = await upload(client, data, **kw)
        assert r.headers["content-type"] == "application/problem+json", r.text
        return r.status_code, r.json()["detail"]

    assert (await status(images.astronaut(), event_code="nope"))[0] == 404
    assert (await status(images.astronaut(), event_code="stopped"))[0] == 409
    assert (await status(b"just some text", content_type="text/plain"))[0] == 415
    assert (await status(b""))[0] == 415
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    assert (await status(gif.getvalue()))[0] == 415
    huge = io.BytesIO()
    Image.new("1", (8000, 7000)).save(huge, "PNG")  # 56 Mpx, a few KB: refused from its header
    code, detail = await status(huge.getvalue())
    assert code == 413 and "pixels" in detail
    code, detail = await status(b"\xff" * (20 * 1024 * 1024 + 1))
    assert code == 413 and "bytes" in detail
    missing = await client.post(IMAGES, data={"event_code": "wedding-2026"})
    assert missing.status_code == 422
    # Nothing half-written: no image rows for any of those.
    assert (await client.get(IMAGES)).json()["total"] == 0
