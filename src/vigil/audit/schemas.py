"""Audit API models."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class AuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    at: datetime
    principal: str | None
    key_id: uuid.UUID | None
    method: str
    route: str
    path: str
    action: str
    target_id: str | None
    status: int
    request_id: str | None
