"""Plate API models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator

from vigil.core.limits import MAX_JSON_FIELD_BYTES, BoundedJSON, check_json_size
from vigil.core.schemas import Input, Patch, Read
from vigil.core.types import UtcDatetime
from vigil.plates.normalize import normalize_plate

Severity = Literal["critical", "warning", "info"]


class Schema(Input, Read):
    """Plates' bodies and reads share one base: unknown fields are refused, rows are read as is."""


class Vehicle(BaseModel):
    """Vehicle attributes; other keys a device sends (year, orientation...) are kept, up to
    16 KiB of JSON in all (the event travels through the broker)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"x-max-json-bytes": MAX_JSON_FIELD_BYTES})

    type: str | None = Field(None, max_length=50)
    color: str | None = Field(None, max_length=50)
    make: str | None = Field(None, max_length=100)
    model: str | None = Field(None, max_length=100)

    @model_validator(mode="after")
    def _bounded(self) -> Vehicle:
        check_json_size(self.model_dump(exclude_none=True))
        return self


MAX_PLATE = 50  # characters, of the plate as sent and of its normalised form (the stored columns)


def _plate(value: str) -> str:
    value = value.strip()
    normalized = normalize_plate(value)
    if not normalized:
        raise ValueError("must contain at least one letter or digit")
    if len(normalized) > MAX_PLATE:  # upper-casing can lengthen it: "ß" -> "SS"
        raise ValueError(f"normalised, the plate is longer than {MAX_PLATE} characters")
    return value


class PlateEventCreate(Schema):
    event_uid: str | None = Field(None, min_length=1, max_length=200)
    camera_id: uuid.UUID
    plate: str = Field(min_length=1, max_length=MAX_PLATE)
    confidence: float = Field(ge=0, le=1)
    captured_at: UtcDatetime
    region: str | None = Field(None, max_length=50)
    vehicle: Vehicle | None = None
    tpms: BoundedJSON | None = Field(
        None, description=f"Tyre pressure readings as the device sends them; at most {MAX_JSON_FIELD_BYTES} "
        "bytes of JSON (else 422 naming `tpms`)."
    )
    bbox: list[Annotated[float, Field(allow_inf_nan=False)]] | None = Field(
        None, min_length=4, max_length=4, description="[x, y, w, h] in pixels"
    )

    _plate = field_validator("plate")(_plate)

    @field_validator("bbox")
    @classmethod
    def _bbox(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (value[2] < 0 or value[3] < 0):
            raise ValueError("width and height must not be negative")
        return value


class PlateEventRead(Schema):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_uid: str | None
    camera_id: uuid.UUID
    plate: str
    plate_normalized: str
    confidence: float
    captured_at: datetime
    region: str | None
    vehicle: dict[str, Any] | None
    tpms: dict[str, Any] | None
    bbox: list[float] | None
    created_at: datetime
    frame_key: str | None = Field(None, exclude=True)
    crop_key: str | None = Field(None, exclude=True)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def frame_url(self) -> str | None:
        return f"/api/v1/plates/events/{self.id}/frame" if self.frame_key else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def crop_url(self) -> str | None:
        return f"/api/v1/plates/events/{self.id}/crop" if self.crop_key else None


class CameraCount(BaseModel):
    camera_id: uuid.UUID
    camera_name: str | None
    count: int


class HourCount(BaseModel):
    hour: datetime
    count: int


class PlateCount(BaseModel):
    plate: str
    count: int
    last_seen_at: datetime


class PlateStats(BaseModel):
    since: datetime | None
    until: datetime | None
    total: int
    by_camera: list[CameraCount]
    by_hour: list[HourCount]
    top_plates: list[PlateCount]
    avg_confidence: float | None


class WatchlistCreate(Schema):
    plate: str = Field(min_length=1, max_length=MAX_PLATE)
    label: str = Field("", max_length=200)
    severity: Severity = "warning"

    _plate = field_validator("plate")(_plate)


class WatchlistUpdate(Schema, Patch):
    label: str | None = Field(None, max_length=200)
    severity: Severity | None = None


class WatchlistRead(Schema):
    id: uuid.UUID
    plate: str
    plate_normalized: str
    label: str
    severity: Severity
    created_at: datetime
    updated_at: datetime
