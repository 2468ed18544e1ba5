"""Test photos made from images bundled with scikit-image: one real face (astronaut) and none (coffee)."""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image


def encode(pixels: np.ndarray | Image.Image, fmt: str = "JPEG", **save_kw) -> bytes:
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(np.ascontiguousarray(pixels))
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}) | save_kw)
    return out.getvalue()


@lru_cache
def astronaut_pixels() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@lru_cache
def astronaut() -> bytes:
    return encode(astronaut_pixels())


@lru_cache
def coffee() -> bytes:
    from skimage import data

    return encode(data.coffee())


@lru_cache
def variants() -> dict[str, bytes]:
    """Transformed copies of the astronaut that must still be the same person."""
    a = astronaut_pixels()
    h, w = a.shape[:2]
    return {
        "flipped": encode(a[:, ::-1]),
        "cropped": encode(a[13:389, 45:467]),
        "darker": encode((a.astype(np.float32) * 0.45).astype(np.uint8)),
        "rescaled": encode(Image.fromarray(a).resize((round(w * 0.6), round(h * 0.6)), Image.Resampling.LANCZOS)),
        "png": encode(a, "PNG"),
    }


# Where the astronaut's face is in the original (x, y, w, h), give or take a few pixels.
ASTRONAUT_FACE = (175, 76, 91, 91)


def near(box, expected, tol: int = 8) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(box, expected, strict=True))
