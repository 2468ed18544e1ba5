"""Asset API models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from vigil.assets.types import TagId
from vigil.core.schemas import Input, Name, Patch, Read


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
