"""The one pagination helper every list endpoint uses: limit/offset in, {items,total,limit,offset} out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import BigInteger, Integer, Select, bindparam, func, select
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
    dicts: bool = False, values: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run `stmt` for one page plus a count of all matching rows.

    Items are the first column of each row (`scalars`, e.g. entities), the rows themselves, or with
    `dicts` one dict per row, keyed by column name: for a `select(*read_columns(...))`, which skips the
    ORM's entity loading and identity map and lets the response model validate plain dicts. With the app's
    `Reads` as `source` (dicts only) the page and its total run at once on the asyncpg read pool, with no
    session at all. `values` fill the statement's `bindparam`s: a statement built once per filter shape and
    run with values is compiled and cached once, where one built per request pays SQLAlchemy's cache key."""
    if isinstance(source, Reads):
        if not dicts:
            raise TypeError("paginate on Reads returns dicts: pass dicts=True")
        return await _paginate_reads(source, stmt, params, values or {})
    count = select(func.count()).select_from(stmt.order_by(None).subquery())
    page = stmt.limit(params.limit).offset(params.offset)
    total = await source.scalar(count, values)
    result = await source.execute(page, values)
    if dicts:
        items = [dict(row) for row in result.mappings()]
    else:
        items = list(result.scalars().all() if scalars else result.all())
    return {"items": items, "total": total or 0, "limit": params.limit, "offset": params.offset}


_LIMIT, _OFFSET, _TOTAL = "__vigil_limit", "__vigil_offset", "__vigil_total"
_PAGED: dict[int, tuple[Select[Any], Select[Any], Select[Any]]] = {}  # base id -> (base, count, page)


def _paged(stmt: Select[Any]) -> tuple[Select[Any], Select[Any]]:
    """The count of `stmt`'s rows, and one page of them (LIMIT/OFFSET as parameters) that carries that
    count on each row, built once per statement object, so that a constant statement is compiled and
    cached once.

    The count on the page is an uncorrelated scalar subquery: PostgreSQL runs it once (an InitPlan) next
    to the page, and still stops the page's sort after LIMIT + OFFSET rows. (`count(*) OVER ()` would
    make it read and sort every matching row.)"""
    seen = _PAGED.get(id(stmt))
    if seen is not None and seen[0] is stmt:
        return seen[1], seen[2]
    count = select(func.count()).select_from(stmt.order_by(None).subquery())
    page = (stmt.add_columns(count.correlate(None).scalar_subquery().label(_TOTAL))
            .limit(bindparam(_LIMIT, type_=Integer)).offset(bindparam(_OFFSET, type_=BigInteger)))
    if len(_PAGED) >= 256:
        _PAGED.clear()
    _PAGED[id(stmt)] = (stmt, count, page)
    return count, page


async def _paginate_reads(reads: Reads, stmt: Select[Any], params: PageParams,
                          values: Mapping[str, Any]) -> dict[str, Any]:
    """The page and its total in one query on one pooled connection. Only a page with no rows past the
    first (an offset past the end) asks for the total on its own."""
    count, page = _paged(stmt)
    items = await reads.all(page, **values, **{_LIMIT: params.limit, _OFFSET: params.offset})
    if items:
        total = items[0][_TOTAL]
        for item in items:
            del item[_TOTAL]
    elif params.offset:
        counted = await reads.one(count, **values)
        total = next(iter(counted.values())) if counted else 0
    else:
        total = 0
    return {"items": items, "total": total or 0, "limit": params.limit, "offset": params.offset}


def read_columns(model: Any, schema: type[BaseModel]) -> list[Any]:
    """The columns of `model`'s table that `schema` shows, to select for `paginate(..., dicts=True)`.
    Every field of the schema must be a column (a property of the entity would be lost): else TypeError."""
    columns = model.__table__.c
    missing = [name for name in schema.model_fields if name not in columns]
    if missing:
        raise TypeError(f"{schema.__name__} fields {missing} are not columns of {model.__tablename__}")
    return [columns[name] for name in schema.model_fields]
