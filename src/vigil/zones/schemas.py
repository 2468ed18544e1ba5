"""Zone API models. Shape is checked here; the polygon rules live in `geometry.py`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from vigil.core.schemas import Input, Name, Patch, Read

ZoneKind = Literal["working", "detection", "exclusion", "parking"]
Coordinate = Annotated[float, Field(allow_inf_nan=False)]
# GeoJSON positions may carry an altitude; zones are planar, so it is accepted and dropped.
Position = Annotated[list[Coordinate], Field(min_length=2, max_length=3)]
Point = Annotated[list[Coordinate], Field(min_length=2, max_length=2)]
ZoneId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]

MAX_RING_POINTS = 10_000
MAX_CONTAINS_POINTS = 100_000
CORNERS = ("x1", "y1", "x2", "y2", "x3", "y3", "x4", "y4")
RESERVED_ZONE_IDS = frozenset({"stats"})  # would shadow GET /zones/stats


RingCoords = Annotated[list[Position], Field(max_length=MAX_RING_POINTS)]


class PolygonGeometry(Input):
    """A GeoJSON Polygon: an outer ring, then optional holes; each ring closed (first == last)."""

    type: Literal["Polygon"]
    coordinates: Annotated[list[RingCoords], Field(min_length=1, max_length=100)]

    def rings(self) -> list[list[list[float]]]:
        return [[[p[0], p[1]] for p in ring] for ring in self.coordinates]


class ZoneShape(Input):
    """Either `geometry` or the seed's eight corner fields x1..y4, never both."""

    geometry: PolygonGeometry | None = None
    x1: Coordinate | None = None
    y1: Coordinate | None = None
    x2: Coordinate | None = None
    y2: Coordinate | None = None
    x3: Coordinate | None = None
    y3: Coordinate | None = None
    x4: Coordinate | None = None
    y4: Coordinate | None = None

    def corners(self) -> list[float] | None:
        values = [getattr(self, c) for c in CORNERS]
        return None if all(v is None for v in values) else values

    @model_validator(mode="after")
    def _one_shape(self) -> ZoneShape:
        given = [c for c in CORNERS if getattr(self, c) is not None]
        if given and len(given) < len(CORNERS):
            missing = ", ".join(c for c in CORNERS if c not in given)
            raise ValueError(f"corners need all of x1..y4; missing {missing}")
        if given and self.geometry is not None:
            raise ValueError("give either geometry or the corners x1..y4, not both")
        return self


class ZoneCreate(ZoneShape):
    zone_id: ZoneId
    name: Name
    kind: ZoneKind = "working"
    camera_id: uuid.UUID | None = None  # the id of an existing camera

    @field_validator("zone_id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value.lower() in RESERVED_ZONE_IDS:
            raise ValueError(f"{value!r} is reserved")
        return value

    @model_validator(mode="after")
    def _has_shape(self) -> ZoneCreate:
        if self.geometry is None and self.corners() is None:
            raise ValueError("a zone needs a shape: geometry (GeoJSON Polygon) or the corners x1..y4")
        return self


class ZoneUpdate(ZoneShape, Patch):
    """PATCH: only the fields given change; `camera_id: null` detaches the zone from its camera."""

    # A null corner means "not given" (the eight corners are one shape, given whole or not at all).
    __nullable__ = frozenset({"camera_id", *CORNERS})

    name: Name | None = None
    kind: ZoneKind | None = None
    camera_id: uuid.UUID | None = None  # the id of an existing camera
    # `null` for name, kind or geometry is refused by the service (core.crud.patch_changes): one rule.


class ZoneRead(Read):
    id: uuid.UUID
    zone_id: str
    name: str
    kind: ZoneKind
    geometry: dict[str, Any]
    camera_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class ZoneCount(BaseModel):
    zone_id: str
    name: str
    kind: ZoneKind
    camera_id: uuid.UUID | None
    people: int


class ZoneStats(BaseModel):
    zones: list[ZoneCount]
    total_zones: int
    assigned_people: int
    unassigned_people: int


class ContainsRequest(Input):
    points: Annotated[list[Point], Field(max_length=MAX_CONTAINS_POINTS)]


class ContainsResponse(BaseModel):
    inside: list[bool]
