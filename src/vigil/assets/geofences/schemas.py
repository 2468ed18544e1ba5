"""Geofence API models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from vigil.assets.types import Coord, Severity
from vigil.core.schemas import Input, Name, Patch, Read

Point = Annotated[list[Coord], Field(min_length=2, max_length=2)]


class GeofenceBase(Input):
    @field_validator("alert_on", check_fields=False)
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else sorted(set(value), key=["enter", "exit"].index)


class GeofenceCreate(GeofenceBase):
    name: Name
    site_id: uuid.UUID
    kind: Literal["circle", "polygon"]
    center: Point | None = None
    radius_m: Annotated[float, Field(allow_inf_nan=False)] | None = None
    polygon: Annotated[list[Point], Field(max_length=1000)] | None = None
    alert_on: list[Literal["enter", "exit"]] = ["enter"]
    severity: Severity = "warning"
    margin_m: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] = 0.5
    dwell_s: Annotated[float, Field(ge=0, le=86400, allow_inf_nan=False)] = 0.0
    auto_resolve: bool = True


class GeofenceUpdate(GeofenceBase, Patch):
    name: Name | None = None
    center: Point | None = None
    radius_m: Annotated[float, Field(allow_inf_nan=False)] | None = None
    polygon: Annotated[list[Point], Field(max_length=1000)] | None = None
    alert_on: list[Literal["enter", "exit"]] | None = None
    severity: Severity | None = None
    margin_m: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] | None = None
    dwell_s: Annotated[float, Field(ge=0, le=86400, allow_inf_nan=False)] | None = None
    auto_resolve: bool | None = None


class GeofenceRead(Read):
    id: uuid.UUID
    name: str
    site_id: uuid.UUID
    kind: Literal["circle", "polygon"]
    center: list[float] | None
    radius_m: float | None
    polygon: list[list[float]] | None
    alert_on: list[str]
    severity: Severity
    margin_m: float
    dwell_s: float
    auto_resolve: bool
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _center_from_orm(cls, value: Any) -> Any:
        if not isinstance(value, dict) and hasattr(value, "center_x"):
            center = None if value.center_x is None else [value.center_x, value.center_y]
            fields = {name: getattr(value, name) for name in cls.model_fields if name != "center"}
            return fields | {"center": center}
        return value


class GeofenceStateRead(Read):
    geofence_id: uuid.UUID
    inside: bool
    since: datetime
    pending_since: datetime | None
