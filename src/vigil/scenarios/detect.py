"""Reading a video source and running OpenCV's built-in detectors on sampled frames (blocking code).

Everything here blocks (decoding, detection, real-time pacing) and runs in a worker thread of the
runner. The detectors ship inside the `opencv-python-headless` wheel (below 5): the Haar frontal-face
cascade from `cv2.data` (class `face`) and the HOG people detector (class `person`); nothing is downloaded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import cv2
import numpy as np
from cv2.data import haarcascades

from vigil.scenarios.schemas import mask_source

# Detection runs on frames at most this wide (HOG's cost grows with the area); boxes are scaled back.
MAX_DETECT_WIDTH = 640


class SourceError(Exception):
    """The source cannot be opened, or opens but yields no decodable frame."""


def _confidence(weight: float) -> float:
    """Map a cascade level weight / SVM margin to (0, 1) with a logistic: monotonic, comparable across frames."""
    return round(1.0 / (1.0 + math.exp(-float(weight))), 4)


class Detectors:
    """The detectors a run asked for, loaded once per run (OpenCV objects are not shared between threads)."""

    def __init__(self, names: Iterable[str]) -> None:
        names = list(names)
        self.face: cv2.CascadeClassifier | None = None
        self.hog: cv2.HOGDescriptor | None = None
        if "face" in names:
            self.face = cv2.CascadeClassifier(haarcascades + "haarcascade_frontalface_default.xml")
            if self.face.empty():
                raise RuntimeError("the Haar frontal-face cascade bundled with OpenCV could not be loaded")
        if "person" in names:
            self.hog = cv2.HOGDescriptor()
            self.hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector()))

    def detect(self, frame: np.ndarray) -> list[tuple[str, float, list[int]]]:
        """(class, confidence, [x, y, w, h]) for one BGR frame, boxes in the frame's own pixels."""
        scale = 1.0
        if frame.shape[1] > MAX_DETECT_WIDTH:
            scale = frame.shape[1] / MAX_DETECT_WIDTH
            frame = cv2.resize(frame, (MAX_DETECT_WIDTH, round(frame.shape[0] / scale)), interpolation=cv2.INTER_AREA)
        found: list[tuple[str, float, list[int]]] = []
        if self.face is not None:
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            boxes, _, weights = self.face.detectMultiScale3(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24),
                                                            outputRejectLevels=True)
            found += [("face", _confidence(w), [round(v * scale) for v in box])
                      for box, w in zip(np.asarray(boxes).reshape(-1, 4), np.ravel(weights), strict=False)]
        if self.hog is not None and frame.shape[0] >= 128 and frame.shape[1] >= 64:
            boxes, weights = self.hog.detectMultiScale(frame, winStride=(8, 8), padding=(8, 8), scale=1.05)
            found += [("person", _confidence(w), [round(v * scale) for v in box])
                      for box, w in zip(np.asarray(boxes).reshape(-1, 4), np.ravel(weights), strict=False)]
        return found


def _opencv_target(source: str) -> str:
    """OpenCV opens paths and network URLs; a file:// URL becomes its path."""
    if source.lower().startswith("file://"):
        return unquote(urlsplit(source).path)
    return source


@dataclass
class Batch:
    predictions: list[dict[str, Any]]
    ended: bool


class VideoSource:
    """An opened source, read in batches of sampled frames; the first frame is decoded on open."""

    def __init__(self, source: str, *, sample_fps: float, max_frames: int | None = None, realtime: bool = False,
                 min_confidence: float = 0.0) -> None:
        self.capture = cv2.VideoCapture(_opencv_target(source))
        if not self.capture.isOpened():
            self.capture.release()
            raise SourceError(f"cannot open source {mask_source(source)}")
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if math.isfinite(fps) and 0 < fps <= 1000 else 0.0
        # Analyse every `stride`-th frame: the video's rate over the sampling rate (every frame if unknown).
        self.stride = max(1, round(self.fps / sample_fps)) if self.fps else 1
        self.max_frames = max_frames
        self.realtime = realtime and self.fps > 0
        self.min_confidence = min_confidence
        self.frames_read = 0
        self.frames_processed = 0
        ok, first = self.capture.read()
        if not ok or first is None:
            self.capture.release()
            raise SourceError(f"source {mask_source(source)} opened but no frame could be decoded")
        self._pending: np.ndarray | None = first
        self._opened_at = time.monotonic()

    def _next(self) -> np.ndarray | None:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        ok, frame = self.capture.read()
        return frame if ok else None

    def read_batch(self, detectors: Detectors, *, max_frames: int, max_seconds: float) -> Batch:
        """Read until `max_frames` sampled frames or `max_seconds` passed, or the source ended."""
        deadline = time.monotonic() + max_seconds
        predictions: list[dict[str, Any]] = []
        sampled = 0
        while sampled < max_frames:
            if self.max_frames is not None and self.frames_read >= self.max_frames:
                return Batch(predictions, ended=True)
            if self.realtime:  # a file read as a camera would deliver it
                due = self._opened_at + self.frames_read / self.fps
                wait = due - time.monotonic()
                if wait > 0:
                    if time.monotonic() + wait > deadline:
                        return Batch(predictions, ended=False)
                    time.sleep(wait)
            frame = self._next()
            if frame is None:
                return Batch(predictions, ended=True)
            index = self.frames_read
            self.frames_read += 1
            if index % self.stride == 0:
                ts = (round(index / self.fps, 3) if self.fps
                      else round(self.capture.get(cv2.CAP_PROP_POS_MSEC) / 1000, 3))
                for label, confidence, bbox in detectors.detect(frame):
                    if confidence >= self.min_confidence:
                        predictions.append({"frame": index, "ts": ts, "class": label, "confidence": confidence,
                                            "bbox": bbox})
                self.frames_processed += 1
                sampled += 1
            if time.monotonic() >= deadline:
                break
        return Batch(predictions, ended=False)

    def close(self) -> None:
        self.capture.release()
