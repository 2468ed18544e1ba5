"""Camera, model config and sensor API models. Camera URLs are masked on the way out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from vigil.cameras.urls import mask_password, validate_stream_url
from vigil.core.schemas import Input, Name, Patch, Read

ModelKind = Literal["detector", "ocr", "reid", "face"]
# What `validate_stream_url` checks that a schema can say too: the scheme and no whitespace.
STREAM_URL = r"^(?:[Rr][Tt][Ss][Pp][Ss]?|[Hh][Tt][Tt][Pp][Ss]?)://\S+$"


class Schema(Input, Read):
    """Cameras' bodies and reads share one base: unknown fields are refused, rows are read as is."""


class Location(Schema):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


def _zone_ids(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    out: list[str] = []
    for zone_id in value:
        zone_id = zone_id.strip()
        if not zone_id:
            raise ValueError("zone ids must not be empty")
        if zone_id not in out:
            out.append(zone_id)
    return out


class CameraCreate(Schema):
    name: Name
    rtsp_url: str = Field(max_length=2000, pattern=STREAM_URL)
    fps: int | None = Field(None, ge=1, le=120, description="Unknown (null) if not given.")
    width: int | None = Field(None, gt=0, le=100_000)
    height: int | None = Field(None, gt=0, le=100_000)
    location: Location | None = None
    zone_ids: list[str] = Field(default_factory=list, max_length=100)
    enabled: bool = True

    _url = field_validator("rtsp_url")(validate_stream_url)
    _zones = field_validator("zone_ids")(_zone_ids)


class CameraUpdate(Schema, Patch):
    __nullable__ = frozenset({"location"})

    name: Name | None = None
    rtsp_url: str | None = Field(None, max_length=2000, pattern=STREAM_URL)
    fps: int | None = Field(None, ge=1, le=120)
    width: int | None = Field(None, gt=0, le=100_000)
    height: int | None = Field(None, gt=0, le=100_000)
    location: Location | None = None
    zone_ids: list[str] | None = Field(None, max_length=100)
    enabled: bool | None = None

    @field_validator("rtsp_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else validate_stream_url(value)

    _zones = field_validator("zone_ids")(_zone_ids)


class CameraRead(Schema):
    id: uuid.UUID
    name: str
    rtsp_url: str
    fps: int | None
    width: int | None
    height: int | None
    location: Location | None
    zone_ids: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime

    @field_validator("rtsp_url")
    @classmethod
    def _mask(cls, value: str) -> str:
        return mask_password(value)


class ModelConfigCreate(Schema):
    name: Name
    kind: ModelKind
    version: str = Field(min_length=1, max_length=100)
    weights_uri: str = Field(min_length=1, max_length=2000)
    params: dict[str, Any] = Field(default_factory=dict)


class ModelConfigUpdate(Schema, Patch):
    name: Name | None = None
    kind: ModelKind | None = None
    version: str | None = Field(None, min_length=1, max_length=100)
    weights_uri: str | None = Field(None, min_length=1, max_length=2000)
    params: dict[str, Any] | None = None


class ModelConfigRead(Schema):
    id: uuid.UUID
    name: str
    kind: ModelKind
    version: str
    weights_uri: str
    params: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class SensorCreate(Schema):
    name: Name
    camera_id: uuid.UUID
    zone_id: str | None = Field(None, min_length=1, max_length=100)
    settings: dict[str, Any] = Field(default_factory=dict)


class SensorUpdate(Schema, Patch):
    __nullable__ = frozenset({"zone_id"})

    name: Name | None = None
    camera_id: uuid.UUID | None = None
    zone_id: str | None = Field(None, min_length=1, max_length=100)
    settings: dict[str, Any] | None = None


class SensorRead(Schema):
    id: uuid.UUID
    name: str
    camera_id: uuid.UUID
    zone_id: str | None
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime
