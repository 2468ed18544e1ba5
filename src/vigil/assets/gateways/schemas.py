"""Gateway API models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from vigil.assets.types import Coord
from vigil.core.schemas import Input, Name, Patch, Read

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
