"""Request and response models of the platform routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vigil.core.security import Scope


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid")


class ApiKeyCreate(Schema):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(min_length=1, description="Deduplicated and ordered when stored.")


class ApiKeyRead(Schema):
    id: uuid.UUID
    name: str
    scopes: list[str]
    created_at: datetime


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The secret key. Shown only in this response; store it now.")


class DependencyCheck(BaseModel):
    status: Literal["ok", "down", "disabled"]
    latency_ms: float | None = None
    error: str | None = None
    backend: str | None = Field(None, description="Which implementation answered (storage: `s3` or `local`).")


class Health(BaseModel):
    status: Literal["ok", "degraded", "down"]
    version: str
    checks: dict[str, DependencyCheck]


class CacheStats(BaseModel):
    backend: str
    hits: int
    misses: int
    keys: int
    caches: dict[str, dict[str, int]]
