"""Assets API models: inputs forbid unknown fields; reads are built from ORM rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vigil.core.schemas import Input, Name, Patch, Read
from vigil.core.types import AwareTime

Severity = Literal["critical", "warning", "info"]
JobStatus = Literal["open", "in_progress", "done"]
RuleKind = Literal["low_battery", "missing", "maintenance_overdue"]
Coord = Annotated[float, Field(allow_inf_nan=False, ge=-1e6, le=1e6)]

RSSI_MIN, RSSI_MAX = -120.0, 0.0


# --- sites -----------------------------------------------------------------------------------


class SiteCreate(Input):
    name: Name
    description: str | None = None


class SiteUpdate(Patch):
    __nullable__ = frozenset({"description"})
    name: Name | None = None
    description: str | None = None


class SiteRead(Read):
    id: uuid.UUID
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime


# --- gateways --------------------------------------------------------------------------------

TxPower = Annotated[float, Field(ge=-120, le=20, allow_inf_nan=False, description="RSSI at 1 m (A), dBm")]
PathLoss = Annotated[float, Field(ge=1.0, le=6.0, allow_inf_nan=False, description="Path-loss exponent n")]


class GatewayCreate(Input):
    name: Name
    site_id: uuid.UUID
    x: Coord
    y: Coord
    tx_power: TxPower = -45.0
    path_loss_exponent: PathLoss = 2.0


class GatewayUpdate(Patch):
    name: Name | None = None
    site_id: uuid.UUID | None = None
    x: Coord | None = None
    y: Coord | None = None
    tx_power: TxPower | None = None
    path_loss_exponent: PathLoss | None = None


class GatewayRead(Read):
    id: uuid.UUID
    name: str
    site_id: uuid.UUID
    x: float
    y: float
    tx_power: float
    path_loss_exponent: float
    created_at: datetime
    updated_at: datetime


# --- assets ----------------------------------------------------------------------------------

TagId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^\S+$")]


class AssetCreate(Input):
    name: Name
    tag_id: TagId
    kind: Annotated[str, Field(min_length=1, max_length=100)] = "generic"
    site_id: uuid.UUID | None = None


class AssetUpdate(Patch):
    __nullable__ = frozenset({"site_id"})
    name: Name | None = None
    tag_id: TagId | None = None
    kind: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    site_id: uuid.UUID | None = None


class AssetRead(Read):
    id: uuid.UUID
    name: str
    tag_id: str
    kind: str
    site_id: uuid.UUID | None
    battery: float | None
    battery_reported_at: datetime | None
    last_seen_at: datetime | None
    created_at: datetime
    updated_at: datetime


class LocationRead(Read):
    asset_id: uuid.UUID
    site_id: uuid.UUID
    x: float
    y: float
    method: Literal["single", "midpoint", "trilateration"]
    accuracy_m: float
    gateways: int
    estimated_at: datetime


# --- jobs ------------------------------------------------------------------------------------


class JobCreate(Input):
    title: Annotated[str, Field(min_length=1, max_length=300)]
    description: str | None = None
    site_id: uuid.UUID | None = None
    asset_ids: Annotated[list[uuid.UUID], Field(max_length=500)] = []
    due_at: AwareTime | None = None


class JobUpdate(Patch):
    __nullable__ = frozenset({"description", "site_id", "due_at"})
    title: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    description: str | None = None
    site_id: uuid.UUID | None = None
    asset_ids: Annotated[list[uuid.UUID], Field(max_length=500)] | None = None
    due_at: AwareTime | None = None
    status: JobStatus | None = None


class JobRead(Read):
    id: uuid.UUID
    title: str
    description: str | None
    status: JobStatus
    site_id: uuid.UUID | None
    asset_ids: list[uuid.UUID]
    due_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _asset_ids_from_orm(cls, value: Any) -> Any:
        if not isinstance(value, dict) and hasattr(value, "assets"):
            return {name: getattr(value, name) for name in cls.model_fields if name != "asset_ids"} | {
                "asset_ids": [a.id for a in value.assets]
            }
        return value


# --- maintenance -----------------------------------------------------------------------------


class MaintenanceCreate(Input):
    asset_id: uuid.UUID
    kind: Annotated[str, Field(min_length=1, max_length=100)]
    notes: str | None = None
    due_at: AwareTime
    done_at: AwareTime | None = None


class MaintenanceUpdate(Patch):
    __nullable__ = frozenset({"done_at", "notes"})
    kind: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    notes: str | None = None
    due_at: AwareTime | None = None
    done_at: AwareTime | None = None


class MaintenanceRead(Read):
    id: uuid.UUID
    asset_id: uuid.UUID
    kind: str
    notes: str | None
    due_at: datetime
    done_at: datetime | None
    overdue_alerted_at: datetime | None
    created_at: datetime
    updated_at: datetime


# --- observations ----------------------------------------------------------------------------


class ObservationIn(Input):
    """One reading, as on the `observations` topic and in HTTP batches."""

    gateway_id: Annotated[str, Field(min_length=1, max_length=200)]
    tag_id: TagId
    rssi: Annotated[float, Field(ge=RSSI_MIN, le=RSSI_MAX, allow_inf_nan=False)]
    observed_at: AwareTime
    battery: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] | None = None


class ObservationMessage(ObservationIn):
    """A reading on the `observations` topic: devices may add fields of their own, which are ignored."""

    model_config = ConfigDict(extra="ignore")


class ObservationBatch(Input):
    # The cap (settings.assets_max_batch) is checked by the service, so it answers 413.
    observations: list[ObservationIn]


class IngestResult(BaseModel):
    received: int
    stored: int
    duplicates: int
    unknown_tags: list[str]
    unknown_gateways: list[str]
    dropped: int


# --- geofences -------------------------------------------------------------------------------

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


# --- rules -----------------------------------------------------------------------------------


class RuleCreate(Input):
    name: Name
    kind: RuleKind
    site_id: uuid.UUID | None = None
    asset_id: uuid.UUID | None = None
    params: dict[str, float] = {}
    severity: Severity = "warning"
    enabled: bool = True

    @model_validator(mode="after")
    def _one_scope(self) -> RuleCreate:
        if self.site_id is not None and self.asset_id is not None:
            raise ValueError("a rule applies to one site or one asset, not both")
        return self


class RuleUpdate(Patch):
    name: Name | None = None
    params: dict[str, float] | None = None
    severity: Severity | None = None
    enabled: bool | None = None


class RuleRead(Read):
    id: uuid.UUID
    name: str
    kind: RuleKind
    site_id: uuid.UUID | None
    asset_id: uuid.UUID | None
    params: dict[str, float]
    severity: Severity
    enabled: bool
    created_at: datetime
    updated_at: datetime


# --- analytics -------------------------------------------------------------------------------


class DwellItem(BaseModel):
    geofence_id: uuid.UUID
    name: str
    seconds: float
    visits: int


class DwellRead(BaseModel):
    asset_id: uuid.UUID
    since: datetime
    until: datetime
    geofences: list[DwellItem]
    total_seconds: float


class UtilisationRead(BaseModel):
    asset_id: uuid.UUID
    since: datetime
    until: datetime
    range_s: float
    seen_s: float
    moving_s: float
    seen_share: float
    moving_share: float

