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


class ConsumerStatus(BaseModel):
    status: Literal["starting", "running", "waiting", "stopped"]
    reason: str | None = None
    topics: list[str]
    group: str | None = None
    processed: int = 0
    dead_lettered: int = 0


class Health(BaseModel):
    status: Literal["ok", "degraded", "down"]
    version: str
    checks: dict[str, DependencyCheck]
    consumers: dict[str, ConsumerStatus] = Field(
        default_factory=dict, description="Each Kafka consumer: running, or waiting (with the reason) during an outage."
    )


class CacheStats(BaseModel):
    backend: str
    hits: int
    misses: int
    keys: int
    caches: dict[str, dict[str, int]]


class OutboxRow(Schema):
    id: int
    topic: str
    key: str | None
    status: Literal["pending", "parked"]
    reason: str | None
    created_at: datetime
    parked_at: datetime | None
    event_type: str | None = Field(None, description="The event's `type`, for events on vigil.events.")
    payload_bytes: int = Field(description="Size of the encoded payload.")


class DeadLetters(BaseModel):
    topic: str = Field(description="The original topic; its dead letters are on `<topic>.dlq`.")
    dlq_topic: str
    count: int = Field(description="Dead letters not replayed yet.")


class Replayed(BaseModel):
    replayed: int
