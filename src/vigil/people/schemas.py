"""People API models, the ReID gallery requests, and the `person_reid_alerts` message."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from vigil.core.schemas import Input, Name, Patch, Read

GlobalId = Annotated[int, Field(ge=0, le=2**63 - 1)]
ZoneRef = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]

MAX_DIMENSION = 4096
MAX_VECTORS = 256
Component = Annotated[float, Field(allow_inf_nan=False)]
Vector = Annotated[list[Component], Field(min_length=1, max_length=MAX_DIMENSION)]


class PersonCreate(Input):
    """Also the body of PUT, a full update: a zone left out becomes null."""

    global_id: GlobalId
    name: Name
    zone_id: ZoneRef | None = None


class PersonUpdate(Patch):
    """PATCH: only the fields given change; `zone_id: null` takes the person out of their zone."""

    __nullable__ = frozenset({"zone_id"})

    global_id: GlobalId | None = None
    name: Name | None = None
    zone_id: ZoneRef | None = None
    # `null` for global_id or name is refused by the service (core.crud.patch_changes): one rule.


class PersonRead(Read):
    id: uuid.UUID
    global_id: int
    name: str
    zone_id: str | None
    created_at: datetime
    updated_at: datetime


class DirectoryEntry(BaseModel):
    name: str
    zone_id: str | None


class ZoneCount(BaseModel):
    zone_id: str | None
    count: int


class PeopleStats(BaseModel):
    total: int
    by_zone: list[ZoneCount]


class EmbeddingsIn(Input):
    """Vectors of one person; all of one length, the gallery's dimension."""

    vectors: Annotated[list[Vector], Field(min_length=1, max_length=MAX_VECTORS)]
    camera_id: Label | None = None
    model: Label | None = None


class EmbeddingsStored(BaseModel):
    stored: int
    dimension: int


class IdentifyIn(Input):
    vector: Vector
    top_k: Annotated[int, Field(ge=1, le=100)] = 5
    min_score: Annotated[float, Field(ge=-1.0, le=1.0)] = 0.0


class Match(BaseModel):
    person_id: uuid.UUID
    global_id: int
    name: str
    score: float


class IdentifyOut(BaseModel):
    matches: list[Match]


class ReidAlertMessage(BaseModel):
    """One JSON record of `person_reid_alerts`; fields beyond these are kept in the alert's data."""

    model_config = ConfigDict(extra="allow")

    global_id: GlobalId
    zone_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    camera_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    kind: Label = "reid_alert"
    severity: str = "warning"
    message: Annotated[str, StringConstraints(max_length=500)] | None = None
    ts: datetime | None = None

    @field_validator("severity")
    @classmethod
    def _severity(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("info", "warning", "critical"):
            raise ValueError("severity must be info, warning or critical")
        return value

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # A pipeline that sends naive timestamps means UTC; stored times are always aware.
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    def extras(self) -> dict[str, Any]:
        return dict(self.model_extra or {})
