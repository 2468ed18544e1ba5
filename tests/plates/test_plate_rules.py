"""Pure plate rules: normalisation, bounded edit distance, image checks."""

import random

import pytest

from tests.plates.helpers import image_bytes, png_bomb
from vigil.plates.images import ImageTooLarge, NotAnImage, inspect_image
from vigil.plates.normalize import normalize_plate, within_distance


def levenshtein(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("ab-123 c", "AB123C"),
        (" AB 123 C ", "AB123C"),
        ("ab.12·3", "AB123"),
        ("м 123 ав 77", "М123АВ77"),
        ("--", ""),
    ],
)
def test_normalize(raw, norm):
    assert normalize_plate(raw) == norm


def test_within_distance_agrees_with_levenshtein():
    rng = random.Random(7)
    for _ in range(3000):
        a = "".join(rng.choice("AB12") for _ in range(rng.randint(0, 7)))
        b = "".join(rng.choice("AB12") for _ in range(rng.randint(0, 7)))
        d = rng.randint(0, 3)
        assert within_distance(a, b, d) == (levenshtein(a, b) <= d), (a, b, d)


LIMITS = {"max_bytes": 1_000_000, "max_pixels": 10_000_000}


@pytest.mark.parametrize(
    ("fmt", "ext", "media"),
    [("JPEG", "jpg", "image/jpeg"), ("PNG", "png", "image/png"), ("WEBP", "webp", "image/webp")],
)
def test_accepted_formats(fmt, ext, media):
    info = inspect_image(image_bytes(fmt), part="frame", **LIMITS)
    assert (info.ext, info.media_type, info.width, info.height) == (ext, media, 64, 32)


@pytest.mark.parametrize(
    "data",
    [
        image_bytes("GIF"),
        image_bytes("BMP"),
        b"hello, not an image",
        b"",
        image_bytes("JPEG", (400, 300))[:300],
    ],
)
def test_refused_as_not_an_image(data):
    with pytest.raises(NotAnImage):
        inspect_image(data, part="frame", **LIMITS)


def test_limits():
    with pytest.raises(ImageTooLarge):
        inspect_image(image_bytes("PNG"), part="crop", max_bytes=10, max_pixels=10_000_000)
    with pytest.raises(ImageTooLarge, match="pixels"):
        inspect_image(png_bomb(5000, 5000), part="crop", **LIMITS)
    with pytest.raises(ImageTooLarge):  # past Pillow's own bomb limit too
        inspect_image(png_bomb(), part="crop", max_bytes=1_000_000, max_pixels=10**12)
