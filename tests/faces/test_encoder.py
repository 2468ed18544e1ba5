"""The model stack on real photos: detection, 128-d L2 vectors, EXIF handling, refusals, clustering."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
import pytest
from PIL import Image

from tests.faces import images
from vigil.faces import encoder
from vigil.faces.encoder import AnalyseOptions, ImageTooLarge, NotAnImage, analyse

OPTS = AnalyseOptions()


@pytest.fixture(scope="module")
def original() -> encoder.Analysis:
    return analyse(images.astronaut(), OPTS)


def test_astronaut_has_a_face_with_a_128d_l2_vector(original):
    assert (original.width, original.height, original.format) == (512, 512, "JPEG")
    assert original.faces, "the astronaut's face must be found"
    face = original.faces[0]  # largest first
    assert images.near(face.bbox, images.ASTRONAUT_FACE)
    assert face.vector.shape == (128,) and face.vector.dtype == np.float32
    # dlib vectors are not unit length: cosine and L2 rank differently, so the metric matters.
    assert abs(float(np.linalg.norm(face.vector)) - 1.0) > 0.1
    assert (original.model, original.alignment) == ("dlib_resnet_v1", "dlib_5pt_chip150")


@pytest.mark.parametrize("name", ["flipped", "cropped", "darker", "rescaled", "png"])
def test_transformed_copies_are_the_same_person(original, name):
    copy = analyse(images.variants()[name], AnalyseOptions(largest_only=True))
    assert len(copy.faces) == 1
    d = encoder.distance(copy.faces[0].vector, original.faces[0].vector)
    assert d < 0.6 and encoder.is_match(d, 0.6), f"{name}: distance {d:.3f}"


def test_photo_without_faces_yields_none():
    result = analyse(images.coffee(), OPTS)
    assert result.faces == [] and result.detected == 0 and (result.width, result.height) == (600, 400)


def test_large_image_is_downscaled_for_detection_and_boxes_scaled_back(original):
    big = images.encode(Image.fromarray(images.astronaut_pixels()).resize((1536, 1536)))
    result = analyse(big, AnalyseOptions(detect_max_side=512, upsample=1, largest_only=True))
    assert (result.width, result.height) == (1536, 1536)
    assert images.near(result.faces[0].bbox, tuple(v * 3 for v in images.ASTRONAUT_FACE), tol=24)
    assert encoder.distance(result.faces[0].vector, original.faces[0].vector) < 0.6


def exif_jpeg(pixels: np.ndarray, **tags) -> bytes:
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    if "orientation" in tags:
        exif[0x0112] = tags["orientation"]
    sub = {}
    if "taken" in tags:
        sub[0x9003] = tags["taken"]
    if "offset" in tags:
        sub[0x9011] = tags["offset"]
    if sub:
        exif.get_ifd(0x8769).update(sub)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def test_exif_orientation_is_applied_before_detection():
    upright = images.astronaut_pixels()[:, 40:440]  # 400 wide, 512 high
    sideways = np.ascontiguousarray(np.rot90(upright))  # stored turned left, as a phone might
    # Orientation 6: "rotate 90 degrees clockwise to display".
    result = analyse(exif_jpeg(sideways, orientation=6), AnalyseOptions(largest_only=True))
    assert (result.width, result.height) == (400, 512)
    assert result.faces and images.near(result.faces[0].bbox, (135, 76, 91, 91))
    # The same pixels without the tag: HOG finds no upright face, which is why the tag matters.
    assert analyse(exif_jpeg(sideways), AnalyseOptions(largest_only=True)).faces == []


def test_taken_at_from_exif():
    px = np.zeros((32, 32, 3), np.uint8)
    with_offset = encoder.open_image(exif_jpeg(px, taken="2024:06:01 14:30:00", offset="+02:00"), max_pixels=10**6)
    assert with_offset[2] == datetime(2024, 6, 1, 12, 30, tzinfo=UTC)
    naive = encoder.open_image(exif_jpeg(px, taken="2024:06:01 14:30:00"), max_pixels=10**6)
    assert naive[2] == datetime(2024, 6, 1, 14, 30, tzinfo=UTC)
    assert encoder.open_image(exif_jpeg(px, taken="not a date"), max_pixels=10**6)[2] is None
    assert encoder.open_image(exif_jpeg(px), max_pixels=10**6)[2] is None
    # Times that exist locally but not in UTC (year 0 or 10000 once shifted) are ignored, not a crash.
    for taken, offset in (("0001:01:01 00:00:00", "+05:00"), ("9999:12:31 23:00:00", "-05:00")):
        assert encoder.open_image(exif_jpeg(px, taken=taken, offset=offset), max_pixels=10**6)[2] is None


def test_refusals():
    with pytest.raises(NotAnImage):
        analyse(b"hello, I am text", OPTS)
    with pytest.raises(NotAnImage):
        analyse(images.encode(np.zeros((8, 8, 3), np.uint8), "GIF"), OPTS)
    with pytest.raises(NotAnImage):
        analyse(images.astronaut()[:2000], OPTS)  # truncated JPEG
    with pytest.raises(ImageTooLarge):
        analyse(images.astronaut(), AnalyseOptions(max_pixels=512 * 511))


def test_distance_is_euclidean_and_threshold_inclusive():
    assert encoder.distance([0, 0, 0], [3, 4, 0]) == pytest.approx(5.0)
    assert encoder.is_match(0.6, 0.6) and not encoder.is_match(0.61, 0.6)


def test_cluster_labels_groups_within_threshold():
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(3, 128)).astype(np.float32) * 0.5  # centres are ~7 apart
    points = np.concatenate([c + rng.normal(scale=0.01, size=(4, 128)) for c in centres])
    order = rng.permutation(len(points))
    progress: list[int] = []
    labels = encoder.cluster_labels(points[order], 0.6, edges_done=progress.append, chunk_rows=5)
    truth = (np.arange(12) // 4)[order]
    assert len(set(labels)) == 3
    for label in set(labels):
        assert len({t for t, lab in zip(truth, labels, strict=True) if lab == label}) == 1
    assert progress == [5, 10, 12]
    assert labels[0] == 0 and encoder.cluster_labels(np.empty((0, 128)), 0.6) == []
    assert encoder.cluster_labels(points[:1], 0.6) == [0]
