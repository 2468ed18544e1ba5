"""Seed-compatible routes: the five systems Vigil replaces keep their own paths and shapes.

One module per seed, each a router that only translates between the seed's request/response shapes
and the domain services. They add no rule and no table: keys, scopes, 409s, 422s and problem+json
are the domain's. `VIGIL_COMPAT` chooses which are mounted (`registry.compat_routers`).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from vigil.core.pagination import MAX_LIMIT, MAX_OFFSET, PageParams

TAG = "compat"


async def seed_page(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"At most {MAX_LIMIT} items.")] = MAX_LIMIT,
    offset: Annotated[int | None, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")] = None,
    skip: Annotated[int | None, Query(ge=0, le=MAX_OFFSET, description="The seeds' name for `offset`.")] = None,
) -> PageParams:
    """The seeds returned plain lists with `skip`/`limit`; both spellings of the offset work."""
    return PageParams(limit=limit, offset=offset if offset is not None else (skip or 0))


SeedPage = Annotated[PageParams, Depends(seed_page)]


def items(page: dict[str, Any]) -> list[Any]:
    """A Vigil page `{items, total, limit, offset}` as the seeds' plain JSON array."""
    return page["items"]


M = TypeVar("M", bound=BaseModel)


def to_domain(model: type[M], data: dict[str, Any], *, renamed: dict[str, str] | None = None) -> M:
    """The domain's input model built from a seed body, its own rules applied: a rule it refuses is a
    422 on the seed's field names, as if the seed's body had been checked directly."""
    back = {v: k for k, v in (renamed or {}).items()}
    try:
        return model.model_validate({(renamed or {}).get(k, k): v for k, v in data.items()})
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *(back.get(str(p), p) for p in e["loc"]))}
                  for e in exc.errors(include_url=False, include_context=False)]
        raise RequestValidationError(errors) from None
