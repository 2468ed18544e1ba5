"""Rule API models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import model_validator

from vigil.assets.types import Severity
from vigil.core.schemas import Input, Name, Patch, Read

RuleKind = Literal["low_battery", "missing", "maintenance_overdue"]


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
