"""The shared bases of every domain's API models, so the same field means the same thing everywhere."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

NAME_MAX = 200  # the `name` columns are String(200)


class Input(BaseModel):
    """Base of request bodies: an unknown field is a 422, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Read(BaseModel):
    """Base of responses: built from ORM rows (`from_attributes`), so routes may return models."""

    model_config = ConfigDict(from_attributes=True)


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX)]
"""A display name: surrounding whitespace is stripped everywhere, and a blank name is a 422."""

