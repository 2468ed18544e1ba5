"""The CRUD kit every domain uses, so one question gets one answer everywhere.

- `get_or_404`: a row by primary key, or the domain's `NotFound` (404, worded by `missing`).
- `ensure_unique`: 409 when another row already holds the values.
- `patch_changes` / `apply_patch`: a PATCH sets only the fields sent; an explicit `null` on a field
  that cannot be empty is 422 (`errors[].type == "null_not_allowed"`), in every domain.
- `unknown_reference`: a body names an id that does not exist: 422 whose `errors[].type` is always
  `unknown_reference` (API.md, v1.1).
- `flush_or_conflict`: flush in a savepoint so a constraint race becomes 409, not a broken session.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.core.errors import Conflict, NotFound, ValidationFailed

T = TypeVar("T")

UNKNOWN_REFERENCE = "unknown_reference"
NULL_NOT_ALLOWED = "null_not_allowed"


def _label(model: type[Any]) -> str:
    """`Camera` -> "Camera", `ModelConfig` -> "Model config": how error details name a model."""
    name = model.__name__
    words = [name[0]]
    for ch in name[1:]:
        words.append(" " + ch.lower() if ch.isupper() else ch)
    return "".join(words)


async def get_or_404(
    session: AsyncSession,
    model: type[T],
    ident: Any,
    *,
    error: type[NotFound] = NotFound,
    what: str | None = None,
    options: Iterable[Any] = (),
    **get_kw: Any,
) -> T:
    """The row of `model` with primary key `ident`, or `error` (a 404) saying which id is missing."""
    row = await session.get(model, ident, options=list(options), **get_kw)
    if row is None:
        raise missing(model, ident, error=error, what=what)
    return row


def missing(model: type[Any], ident: Any, *, error: type[NotFound] = NotFound, what: str | None = None) -> NotFound:
    """The 404 for a `model` row `ident` that does not exist: "Camera 3f2a... does not exist." """
    return error(f"{what or _label(model)} {ident} does not exist.")


async def ensure_unique(
    session: AsyncSession,
    model: type[Any],
    *,
    exclude_id: Any = None,
    detail: str | None = None,
    error: type[Conflict] = Conflict,
    **values: Any,
) -> None:
    """409 when a row of `model` other than `exclude_id` already has all of `values` (name taken)."""
    stmt = select(model.id).where(*(getattr(model, k) == v for k, v in values.items())).limit(1)
    if exclude_id is not None:
        stmt = stmt.where(model.id != exclude_id)
    if await session.scalar(stmt) is not None:
        if detail is None:
            what = " and ".join(f"{k} {v!r}" for k, v in values.items())
            detail = f"A {_label(model).lower()} with {what} already exists."
        raise error(detail)


async def flush_or_conflict(session: AsyncSession, detail: str, *, error: type[Conflict] = Conflict) -> None:
    """Flush inside a savepoint so a unique/foreign-key race becomes a 409, not a broken session."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise error(detail) from exc


def null_not_allowed(fields: Collection[str]) -> ValidationFailed:
    """The one 422 for `null` sent to fields that cannot be empty."""
    names = sorted(fields)
    return ValidationFailed(
        f"{', '.join(repr(n) for n in names)} cannot be null.",
        errors=[{"loc": ["body", n], "msg": "may not be null", "type": NULL_NOT_ALLOWED} for n in names],
    )


def patch_changes(body: BaseModel, *, nullable: Collection[str] | None = None) -> dict[str, Any]:
    """The fields a PATCH sets (sent, even if null); 422 if a field outside `nullable` is null.

    `nullable` defaults to the body's `__nullable__` (see `core.schemas.Patch`), which the OpenAPI
    document shows too.
    """
    allowed: Collection[str] = getattr(type(body), "__nullable__", frozenset()) if nullable is None else nullable
    changes = body.model_dump(exclude_unset=True)
    nulls = [k for k, v in changes.items() if v is None and k not in allowed]
    if nulls:
        raise null_not_allowed(nulls)
    return changes


def apply_patch(
    obj: Any, body: BaseModel | dict[str, Any], *, nullable: Collection[str] | None = None,
    skip: Collection[str] = (),
) -> dict[str, Any]:
    """Set on `obj` the fields the PATCH `body` sent (checked by `patch_changes`); returns them all.

    Fields in `skip` are checked and returned but not set: the caller maps them itself (a location
    stored as two columns, a masked password...). A dict is taken as already checked changes.
    """
    changes = body if isinstance(body, dict) else patch_changes(body, nullable=nullable)
    for name, value in changes.items():
        if name not in skip:
            setattr(obj, name, value)
    return changes


def unknown_reference(
    field: str,
    values: Any,
    *,
    what: str | None = None,
    indexed: bool = False,
    error: type[ValidationFailed] = ValidationFailed,
    **extra: Any,
) -> ValidationFailed:
    """The 422 for a body that names ids which do not exist; every `errors[].type` is `unknown_reference`.

    `values` is one id or a list of them; `indexed` puts each id's position in a list field into `loc`
    (then `values` must be `(index, id)` pairs).
    """
    what = what or field.removesuffix("_ids").removesuffix("_id").replace("_", " ")
    items: list[tuple[int | None, Any]]
    if indexed:
        items = [(i, v) for i, v in values]
    elif isinstance(values, list | tuple | set):
        items = [(None, v) for v in values]
    else:
        items = [(None, values)]
    errors = [
        {
            "loc": ["body", field] + ([i] if i is not None else []),
            "msg": f"unknown {what} {v}",
            "type": UNKNOWN_REFERENCE,
        }
        for i, v in items
    ]
    names = ", ".join(str(v) for _, v in items)
    plural = "s" if len(items) > 1 else ""
    return error(f"Unknown {what}{plural}: {names}.", errors=errors, **extra)
