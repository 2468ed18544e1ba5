"""Maintenance API models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from vigil.core.schemas import Input, Patch, Read
from vigil.core.types import AwareTime


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
