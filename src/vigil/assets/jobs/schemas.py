"""Job API models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from vigil.core.schemas import Input, Patch, Read
from vigil.core.types import AwareTime

JobStatus = Literal["open", "in_progress", "done"]


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
