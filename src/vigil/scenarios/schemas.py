"""Scenario API models, and the two Kafka messages: the job on `scenarios` and the failure on `retry_topic`."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, computed_field, field_serializer, field_validator

from vigil.core.schemas import Input, Read
from vigil.scenarios.states import RunStatus, Status, allowed_moves

Detector = Literal["face", "person"]
DETECTORS: tuple[Detector, ...] = ("face", "person")

MAX_SOURCE_LENGTH = 2048
# API.md v1.1: network sources go through the SSRF guard, files must be under the media root (sources.py).
SOURCE_SCHEMES = frozenset({"file", "http", "https", "rtsp", "rtsps"})
_URL_PASSWORD = re.compile(r"^([a-z][a-z0-9+.\-]*://[^:/@\s]+:)[^@/\s]+@", re.IGNORECASE)


def mask_source(source: str | None) -> str:
    """`rtsp://user:secret@host/x` -> `rtsp://user:***@host/x`: passwords never leave in responses or logs."""
    if source is None:
        return "(the runner's default source)"
    return _URL_PASSWORD.sub(r"\1***@", source)


def check_source(value: str) -> str:
    """A video file path or a URL OpenCV can open; refuses what is empty, absurd or of another kind."""
    source = value.strip()
    if not source:
        raise ValueError("source is empty")
    if len(source) > MAX_SOURCE_LENGTH:
        raise ValueError(f"source is longer than {MAX_SOURCE_LENGTH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in source):
        raise ValueError("source contains control characters")
    if "://" in source:
        url = urlsplit(source)
        scheme = url.scheme.lower()
        if scheme not in SOURCE_SCHEMES:
            raise ValueError(f"source scheme must be one of {', '.join(sorted(SOURCE_SCHEMES))}")
        if scheme == "file":
            if not url.path or url.path.endswith("/"):
                raise ValueError("a file URL must name a file")
        elif not url.hostname:
            raise ValueError("source URL has no host")
    elif source.endswith("/") or source in (".", ".."):
        raise ValueError("source must name a video file, not a directory")
    return source


class ScenarioParams(Input):
    """How a runner processes the source."""

    detectors: list[Detector] = Field(default_factory=lambda: list(DETECTORS), min_length=1,
                                      description="Detectors to run: `face` (Haar cascade), `person` (HOG).")
    sample_fps: float | None = Field(None, gt=0, le=240,
                                     description="Frames per second of video to analyse; unset = the runner's default.")
    max_frames: int | None = Field(None, ge=1, description="Stop after reading this many frames (live sources).")
    realtime: bool = Field(False, description="Read a file at its own frame rate, as a camera would deliver it.")
    min_confidence: float = Field(0.0, ge=0, le=1, description="Detections below this confidence are not stored.")

    @field_validator("detectors")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class ScenarioCreate(Input):

    source: str | None = Field(None, max_length=MAX_SOURCE_LENGTH + 100,
                               description="Video file or URL; unset = the runner's own default source "
                                           "(`vigil runner --source`).")
    params: ScenarioParams = Field(default_factory=ScenarioParams)

    @field_validator("source")
    @classmethod
    def _source(cls, value: str | None) -> str | None:
        return None if value is None else check_source(value)


class StatusChange(Input):

    status: Status
    reason: str | None = Field(None, max_length=1000)
    version: int | None = Field(None, ge=1, description="Refuse (409) unless the scenario is at this version.")


class RunRead(Read):

    id: uuid.UUID
    attempt: int
    status: RunStatus
    runner: str | None
    frames_read: int
    frames_processed: int
    predictions: int
    fps: float | None
    error: str | None
    heartbeat_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime


class ScenarioRead(Read):

    id: uuid.UUID
    source: str | None
    params: dict[str, Any]
    status: Status
    version: int
    last_error: str | None
    latest_run: RunRead | None
    created_at: datetime
    updated_at: datetime

    @field_serializer("source")
    def _masked(self, source: str | None) -> str | None:
        return None if source is None else mask_source(source)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def attempts(self) -> int:
        """Attempts of the current dispatch so far (0 before the first)."""
        return self.latest_run.attempt if self.latest_run else 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def allowed_transitions(self) -> list[str]:
        """Where the state machine lets the scenario go from here."""
        return allowed_moves(self.status)


class TransitionRead(Read):

    from_status: Status | None
    to_status: Status
    version: int
    reason: str | None
    by: str | None
    at: datetime


class PredictionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    frame: int
    ts: float
    class_: str = Field(validation_alias=AliasChoices("label", "class"), serialization_alias="class")
    confidence: float
    bbox: list[int]


class ClassSummary(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    class_: str = Field(validation_alias=AliasChoices("label", "class"), serialization_alias="class")
    count: int
    frames: int
    avg_confidence: float
    max_confidence: float


class PredictionPage(BaseModel):
    scenario_id: uuid.UUID
    run_id: uuid.UUID | None
    predictions: list[PredictionRead]
    total: int
    limit: int
    offset: int
    summary: list[ClassSummary]


class Job(BaseModel):
    """A message on `scenarios`: process this run of this scenario."""

    model_config = ConfigDict(extra="ignore")

    scenario_id: uuid.UUID
    run_id: uuid.UUID
    source: str | None = Field(None, min_length=1, max_length=MAX_SOURCE_LENGTH)  # None: the runner's default
    params: dict[str, Any] = Field(default_factory=dict)
    attempt: int = Field(ge=1)


class RunFailure(BaseModel):
    """A message on `retry_topic`: this run failed, and why."""

    model_config = ConfigDict(extra="ignore")

    scenario_id: uuid.UUID
    run_id: uuid.UUID
    attempt: int = Field(ge=1)
    error: str
    runner: str | None = None
    failed_at: datetime | None = None
