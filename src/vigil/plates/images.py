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
    """Decode the whole image to prove it is one; blocking, so callers run it in a thread.

    The pixel limit is checked from the header before decoding, so a small file that would expand to
    gigabytes (a decompression bomb) is refused without allocating it.
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
            img.load()
            fmt = img.format or ""
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"'{part}' has too many pixels: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise NotAnImage(
            f"'{part}' is not a readable JPEG, PNG or WebP image ({type(exc).__name__})."
        ) from None
    if fmt not in FORMATS:
        raise NotAnImage(f"'{part}' is {fmt or 'an unknown format'}; only JPEG, PNG and WebP are accepted.")
    ext, media_type = FORMATS[fmt]
    return ImageInfo(ext, media_type, width, height)
