"""Tracking API models: observations in, locations out, and the reports over their history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from vigil.assets.types import TagId
from vigil.core.schemas import Input, Read
from vigil.core.types import AwareTime

RSSI_MIN, RSSI_MAX = -120.0, 0.0


class LocationRead(Read):
    asset_id: uuid.UUID
    site_id: uuid.UUID
    x: float
    y: float
    method: Literal["single", "midpoint", "trilateration"]
    accuracy_m: float
    gateways: int
    estimated_at: datetime


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
