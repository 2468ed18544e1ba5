"""Image checks for ingest: decode with Pillow (JPEG/PNG/WebP only) under a byte and a pixel limit."""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

from PIL import Image, UnidentifiedImageError

from vigil.core.errors import PayloadTooLarge, UnsupportedMediaType

# Pillow format -> (file extension, media type)
FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
}


class ImageTooLarge(PayloadTooLarge):
    title = "Image too large"


class NotAnImage(UnsupportedMediaType):
    title = "Unsupported image"


@dataclass(frozen=True, slots=True)
class ImageInfo:
    ext: str
    media_type: str
    width: int
    height: int


def inspect_image(data: bytes, *, part: str, max_bytes: int, max_pixels: int) -> ImageInfo:
    """Read the image header (format, width, height) to prove it is a JPEG, PNG or WebP within the limits.

    Pillow's `Image.open` is lazy: it parses the header and decodes no pixels, so this costs microseconds
    and may run on the event loop. The pixel limit comes from the header too, so a decompression bomb is
    refused without allocating it. Whoever needs the pixels later decodes them off the loop.
    """
    if len(data) > max_bytes:
        raise ImageTooLarge(f"'{part}' is {len(data)} bytes; the limit is {max_bytes}.")
    if not data:
        raise NotAnImage(f"'{part}' is empty.")
    try:
        with Image.open(BytesIO(data), formats=list(FORMATS)) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise ImageTooLarge(f"'{part}' is {width}x{height} pixels; the limit is {max_pixels} pixels.")
            fmt = img.format or ""
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"'{part}' has too many pixels: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise NotAnImage(
            f"'{part}' is not a readable JPEG, PNG or WebP image ({type(exc).__name__})."
        ) from None
    if fmt not in FORMATS:
        raise NotAnImage(f"'{part}' is {fmt or 'an unknown format'}; only JPEG, PNG and WebP are accepted.")
    if not _complete(fmt, data):
        raise NotAnImage(f"'{part}' is a truncated {fmt} image.")
    ext, media_type = FORMATS[fmt]
    return ImageInfo(ext, media_type, width, height)


def _complete(fmt: str, data: bytes) -> bool:
    """Whether the file ends the way its format ends (the header alone cannot tell a cut-off upload)."""
    if fmt == "JPEG":
        return data.rstrip(b"\x00")[-2:] == b"\xff\xd9"  # EOI; some encoders pad with zeros
    if fmt == "PNG":
        return data[-12:-8] == b"\x00\x00\x00\x00" and data[-8:-4] == b"IEND"
    if fmt == "WEBP":
        return len(data) >= 12 and int.from_bytes(data[4:8], "little") + 8 <= len(data)
    return True
