"""Images and cameras for the plate tests."""

import io
import struct
import zlib

from PIL import Image


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (64, 32), color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid-looking PNG whose header claims width x height pixels (tiny on the wire)."""
    png = bytearray(image_bytes("PNG", (1, 1)))
    ihdr = png.index(b"IHDR")
    png[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(png[ihdr : ihdr + 17])) & 0xFFFFFFFF
    png[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    return bytes(png)


async def make_camera(client, name: str = "Gate 1") -> str:
    r = await client.post(
        "/api/v1/cameras",
        json={"name": name, "rtsp_url": "rtsp://10.0.0.2/s", "fps": 10, "width": 1280, "height": 720},
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def event(camera_id: str, **kw) -> dict:
    return {
        "camera_id": camera_id,
        "plate": "AB-123 c",
        "confidence": 0.91,
        "captured_at": "2026-11-20T10:15:00+00:00",
    } | kw
