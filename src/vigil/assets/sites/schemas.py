"""Site API models."""

from __future__ import annotations

import uuid
from datetime import datetime

from vigil.core.schemas import Input, Name, Patch, Read


class SiteCreate(Input):
    name: Name
    description: str | None = None


class SiteUpdate(Patch):
    __nullable__ = frozenset({"description"})
    name: Name | None = None
    description: str | None = None


class SiteRead(Read):
    id: uuid.UUID
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime
