"""The one pagination helper every list endpoint uses: limit/offset in, {items,total,limit,offset} out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.core.reads import Reads

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# PostgreSQL's OFFSET is a bigint: past it the driver cannot even send the number.
MAX_OFFSET = 2**63 - 1

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int = DEFAULT_LIMIT
    offset: int = 0


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Page size, at most {MAX_LIMIT}.")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]


async def paginate(
    source: AsyncSession | Reads, stmt: Select[Any], params: PageParams, *, scalars: bool = True,
    dicts: bool = False,
) -> dict[str, Any]:
    """Run `stmt` for one page plus a count of all matching rows.

    Items are the first column of each row (`scalars`, e.g. entities), the rows themselves, or with
    `dicts` one dict per row, keyed by column name: for a `select(*read_columns(...))`, which skips the
    ORM's entity loading and identity map and lets the response model validate plain dicts. With the app's
    `Reads` as `source` (dicts only) both queries run on the asyncpg read pool, with no session at all."""
    count = select(func.count()).select_from(stmt.order_by(None).subquery())
    page = stmt.limit(params.limit).offset(params.offset)
    if isinstance(source, Reads):
        if not dicts:
            raise TypeError("paginate on Reads returns dicts: pass dicts=True")
        counted = await source.one(count)
        total = next(iter(counted.values())) if counted else 0
        items: list[Any] = await source.all(page)
        return {"items": items, "total": total or 0, "limit": params.limit, "offset": params.offset}
    total = await source.scalar(count)
    result = await source.execute(page)
    if dicts:
        items = [dict(row) for row in result.mappings()]
    else:
        items = list(result.scalars().all() if scalars else result.all())
    return {"items": items, "total": total or 0, "limit": params.limit, "offset": params.offset}


def read_columns(model: Any, schema: type[BaseModel]) -> list[Any]:
    """The columns of `model`'s table that `schema` shows, to select for `paginate(..., dicts=True)`.
    Every field of the schema must be a column (a property of the entity would be lost): else TypeError."""
    columns = model.__table__.c
    missing = [name for name in schema.model_fields if name not in columns]
    if missing:
        raise TypeError(f"{schema.__name__} fields {missing} are not columns of {model.__tablename__}")
    return [columns[name] for name in schema.model_fields]
