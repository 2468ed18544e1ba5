"""Face model stack behind a small interface: decode an image, detect faces (boxes), encode them (vectors).

Everything here is plain, blocking, CPU-bound code. It runs inside worker processes (see
`vigil.faces.runtime`), never on the event loop, and imports nothing of the web app.

The one model today is dlib's: the HOG frontal face detector, the 5-point shape predictor for
alignment and the ResNet face recognition model v1 (128-d). The model files come from the
`face-recognition-models` wheel; nothing is downloaded at run time. Its vectors are not unit length:
two faces are compared by **Euclidean (L2) distance**, and 0.6 is the usual same-person cut.
"""

from __future__ import annotations

import importlib.util
import io
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MODEL = "dlib_resnet_v1"
METRIC = "l2"  # what `distance` means everywhere in the faces API
ALLOWED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}

# EXIF tags (Exif IFD and IFD0) used for `taken_at`.
_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_OFFSET_TIME_ORIGINAL = 0x9011
_DATETIME = 0x0132


class ImageRejected(Exception):
    """The upload cannot be analysed; subclasses say why. Plain args so it pickles across processes."""


class NotAnImage(ImageRejected):
    """Not a decodable JPEG, PNG or WebP image."""


class ImageTooLarge(ImageRejected):
    """More pixels than the configured cap."""


@dataclass(frozen=True, slots=True)
class Box:
    """A detection in image pixels: left, top, right, bottom (exclusive) and the detector's score."""

    left: int
    top: int
    right: int
    bottom: int
    score: float = 0.0

    @property
    def area(self) -> int:
        return max(0, self.right - self.left) * max(0, self.bottom - self.top)

    def scaled(self, factor: float) -> Box:
        return Box(round(self.left * factor), round(self.top * factor), round(self.right * factor),
                   round(self.bottom * factor), self.score)

    def clipped_xywh(self, width: int, height: int) -> tuple[int, int, int, int]:
        """`[x, y, w, h]` inside the image (detections may reach past its edges)."""
        left, top = max(0, self.left), max(0, self.top)
        right, bottom = min(width, self.right), min(height, self.bottom)
        return left, top, max(0, right - left), max(0, bottom - top)


class FaceEncoder(Protocol):
    """What a face model offers. `model` and `alignment` are stored with every vector it makes."""

    model: str
    alignment: str
    dim: int

    def detect(self, image: np.ndarray, *, upsample: int) -> list[Box]:
        """Faces in an RGB uint8 image, best first."""
        ...

    def encode(self, image: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        """One `dim`-long float32 vector per box, shape (len(boxes), dim)."""
        ...


def _models_dir() -> Path:
    # Located without importing the package: its __init__ pulls in pkg_resources for nothing.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise RuntimeError("the face-recognition-models package is not installed")
    return Path(spec.origin).parent / "models"


class DlibResNetEncoder:
    """dlib HOG detector + 5-point alignment + ResNet v1 (128-d, compare with L2)."""

    model = DEFAULT_MODEL
    alignment = "dlib_5pt_chip150"  # 5 landmarks, 150x150 chip, padding 0.25
    dim = 128

    def __init__(self) -> None:
        import dlib  # heavy (native library, models): loaded only in the encoder's worker processes

        models = _models_dir()
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._shapes = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self._net = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))

    def detect(self, image: np.ndarray, *, upsample: int) -> list[Box]:
        rects, scores, _ = self._detector.run(image, upsample, 0.0)
        boxes = [Box(r.left(), r.top(), r.right() + 1, r.bottom() + 1, float(s))
                 for r, s in zip(rects, scores, strict=True)]
        return sorted(boxes, key=lambda b: -b.score)

    def encode(self, image: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        if not boxes:
            return np.empty((0, self.dim), dtype=np.float32)
        shapes = self._dlib.full_object_detections()
        for b in boxes:
            shapes.append(self._shapes(image, self._dlib.rectangle(b.left, b.top, b.right - 1, b.bottom - 1)))
        vectors = self._net.compute_face_descriptor(image, shapes)
        return np.asarray([np.asarray(v) for v in vectors], dtype=np.float32)


ENCODERS: dict[str, type[FaceEncoder]] = {DEFAULT_MODEL: DlibResNetEncoder}
_loaded: dict[str, FaceEncoder] = {}
_load_lock = threading.Lock()


def get_encoder(model: str = DEFAULT_MODEL) -> FaceEncoder:
    """The model, loaded once per process (the dlib objects are not shared between threads here)."""
    with _load_lock:
        if model not in _loaded:
            if model not in ENCODERS:
                raise ValueError(f"unknown face model {model!r}")
            _loaded[model] = ENCODERS[model]()
        return _loaded[model]


def distance(a: np.ndarray | Sequence[float], b: np.ndarray | Sequence[float]) -> float:
    """Euclidean (L2) distance, the metric dlib's vectors are trained for (not cosine)."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def is_match(dist: float, threshold: float) -> bool:
    """Same person when the L2 distance is at most the threshold (0.6 for dlib ResNet v1)."""
    return dist <= threshold


@dataclass(frozen=True, slots=True)
class AnalyseOptions:
    max_pixels: int = 50_000_000
    detect_max_side: int = 1024
    upsample: int = 1
    largest_only: bool = False  # search: encode only the largest face
    model: str = DEFAULT_MODEL


@dataclass(slots=True)
class FoundFace:
    bbox: tuple[int, int, int, int]  # x, y, w, h in the upright image
    score: float
    vector: np.ndarray


@dataclass(slots=True)
class Analysis:
    """What one image yields: upright size, format, EXIF capture time and the faces, largest first."""

    width: int
    height: int
    format: str
    content_type: str
    extension: str
    taken_at: datetime | None
    model: str
    alignment: str
    faces: list[FoundFace] = field(default_factory=list)
    detected: int = 0  # faces found, even when only the largest was encoded


def exif_taken_at(image: Image.Image) -> datetime | None:
    """DateTimeOriginal (with OffsetTimeOriginal when present, else read as UTC), or DateTime."""
    try:
        exif = image.getexif()
    except Exception:  # a broken EXIF block is not a broken image
        return None
    sub = exif.get_ifd(_EXIF_IFD) if exif else {}
    raw = sub.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    if not isinstance(raw, str):
        return None
    try:
        taken = datetime.strptime(raw.strip("\x00 "), "%Y:%m:%d %H:%M:%S").replace(tzinfo=UTC)  # zone set below
    except ValueError:
        return None
    tz = UTC
    offset = sub.get(_OFFSET_TIME_ORIGINAL)
    if isinstance(offset, str) and len(offset.strip()) == 6 and offset[0] in "+-":
        try:
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            delta = timedelta(hours=hours, minutes=minutes)
            tz = timezone(delta if offset[0] == "+" else -delta)
        except ValueError:
            pass
    try:
        return taken.replace(tzinfo=tz).astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01 at +05:00: before year 1 in UTC; a bad tag, not a bad image
        return None


def open_image(data: bytes, *, max_pixels: int) -> tuple[Image.Image, str, datetime | None]:
    """Decode, refuse what is not JPEG/PNG/WebP or over the pixel cap, apply EXIF orientation, RGB."""
    try:
        image = Image.open(io.BytesIO(data))
        fmt = image.format or ""
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise NotAnImage("the file is not a JPEG, PNG or WebP image") from exc
    if fmt not in ALLOWED_FORMATS:
        raise NotAnImage(f"unsupported image format {fmt or 'unknown'}; use JPEG, PNG or WebP")
    width, height = image.size
    if width * height > max_pixels:  # checked from the header, before the pixels are decoded
        raise ImageTooLarge(f"the image has {width}x{height} pixels; at most {max_pixels} are accepted")
    taken_at = exif_taken_at(image)
    try:
        image.load()
        # Phone photos are stored sideways with an orientation tag; HOG only finds upright faces.
        upright = ImageOps.exif_transpose(image)
        rgb = upright.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise NotAnImage(f"the image cannot be decoded: {exc}") from exc
    return rgb, fmt, taken_at


def analyse(data: bytes, options: AnalyseOptions) -> Analysis:
    """Decode an upload and find and encode its faces. Detection runs on a copy downscaled to
    `detect_max_side`; landmarks and vectors are taken from the full-resolution image."""
    image, fmt, taken_at = open_image(data, max_pixels=options.max_pixels)
    encoder = get_encoder(options.model)
    width, height = image.size
    scale = min(1.0, options.detect_max_side / max(width, height))
    small = image if scale >= 1.0 else image.resize(
        (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BILINEAR, reducing_gap=2.0
    )
    boxes = [b.scaled(1 / scale) if scale < 1.0 else b
             for b in encoder.detect(np.asarray(small), upsample=options.upsample)]
    boxes.sort(key=lambda b: (-b.area, -b.score))
    detected = len(boxes)
    if options.largest_only:
        boxes = boxes[:1]
    full = np.asarray(image)
    vectors = encoder.encode(full, boxes)
    faces = [FoundFace(b.clipped_xywh(width, height), b.score, v) for b, v in zip(boxes, vectors, strict=True)]
    return Analysis(width=width, height=height, format=fmt, content_type=ALLOWED_FORMATS[fmt],
                    extension=EXTENSIONS[fmt], taken_at=taken_at, model=encoder.model,
                    alignment=encoder.alignment, faces=faces, detected=detected)


def warm_up(model: str = DEFAULT_MODEL) -> str:
    """Load the model in this (worker) process so the first upload does not pay for it."""
    return get_encoder(model).model


def cluster_labels(vectors: np.ndarray, threshold: float, *, edges_done: Callable[[int], None] | None = None,
                   chunk_rows: int | None = None) -> list[int]:
    """Chinese whispers over the graph 'L2 distance <= threshold' (dlib's algorithm, as in its
    face clustering example). Labels are 0..k-1, numbered by first appearance."""
    import dlib  # heavy (native library): loaded only when a recompute runs, in its thread

    n = len(vectors)
    if n == 0:
        return []
    x = np.asarray(vectors, dtype=np.float32)
    sq = np.einsum("ij,ij->i", x, x)
    rows = chunk_rows or max(1, (1 << 22) // max(n, 1))  # ~16 MB of distances per chunk
    edges: list[tuple[int, int]] = []
    limit = threshold * threshold
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        d2 = sq[start:stop, None] + sq[None, :] - 2.0 * (x[start:stop] @ x.T)
        ii, jj = np.nonzero(d2 <= limit)
        ii += start
        keep = jj > ii  # each undirected edge once; every vertex gets a self-edge below
        edges.extend(zip(ii[keep].tolist(), jj[keep].tolist(), strict=True))
        if edges_done is not None:
            edges_done(stop)
    edges.extend((i, i) for i in range(n))
    raw = dlib.chinese_whispers(edges)
    renumber: dict[int, int] = {}
    return [renumber.setdefault(label, len(renumber)) for label in raw]
