"""Alert API models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Severity = Literal["critical", "warning", "info"]
Status = Literal["open", "acknowledged", "resolved"]


class AlertRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    source: str
    kind: str
    subject: str
    severity: Severity
    status: Status
    title: str
    data: dict[str, Any]
    count: int
    created_at: datetime
    last_seen_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None


class RecentMessage(BaseModel):
    """A raw message as it arrived on an alert topic; `value` is its JSON, or its text if not JSON."""

    topic: str
    partition: int
    offset: int
    key: str | None
    timestamp: datetime | None
    received_at: datetime
    value: Any
