"""Request-scoped dependencies shared by every router: the unit-of-work session and app clients.

The clients are the ones the lifespan opened and keeps on `app.state` (`AppContext`); routers take them
through these `Annotated` aliases instead of reading them off the app state. They take an `HTTPConnection`,
so the same alias works in HTTP and WebSocket routes.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel
from redis.asyncio import Redis
from sqlalchemy import bindparam, select
from sqlalchemy import inspect as inspect_model
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from vigil.core.cache import Cache
from vigil.core.config import Settings
from vigil.core.context import AppContext
from vigil.core.crud import get_or_404, missing
from vigil.core.db import session_scope
from vigil.core.errors import NotFound
from vigil.core.messaging import Bus
from vigil.core.pagination import read_columns
from vigil.core.reads import Reads
from vigil.core.security import KeyCache
from vigil.core.storage import BlobStore
from vigil.core.ws import Hub

T = TypeVar("T")

READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Every dependency is `async def`, even when it only reads an attribute: FastAPI runs a plain `def`
# dependency in the thread pool, a thread hop per request each (tests/platform/test_perf_auth.py checks).


class ConsumerRuntime(Protocol):
    """What the platform routes need of the lifespan's runtime (`main.Runtime`): its consumers' state."""

    def consumer_status(self) -> dict[str, dict[str, Any]]: ...


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Unit of work per request: commit when the handler returns, roll back when it raises.

    GET/HEAD only read: they get an autocommit session (no BEGIN/COMMIT round trips, no unit of work).
    """
    ctx = request.app.state.ctx
    if request.method in READ_ONLY_METHODS and ctx.read_sessionmaker is not None:
        async with ctx.read_sessionmaker() as session:
            yield session
        return
    async with session_scope(ctx.sessionmaker) as session:
        yield session


async def get_settings_dep(conn: HTTPConnection) -> Settings:
    """The one Settings object the app was created with."""
    value: Settings = conn.app.state.settings
    return value


async def get_ctx(conn: HTTPConnection) -> AppContext:
    """Every client this instance holds; for services that take the whole context (health, dead letters)."""
    value: AppContext = conn.app.state.ctx
    return value


CtxDep = Annotated[AppContext, Depends(get_ctx)]


# The getters below read the context straight from the app, not through CtxDep: each level of
# dependencies costs FastAPI some microseconds on every request.
async def get_cache(conn: HTTPConnection) -> Cache:
    """The Redis-backed cache with explicit invalidation."""
    ctx: AppContext = conn.app.state.ctx
    return ctx.cache


async def get_storage(conn: HTTPConnection) -> BlobStore:
    """Blob storage: the local directory, or S3 when configured."""
    ctx: AppContext = conn.app.state.ctx
    return ctx.storage


async def get_redis(conn: HTTPConnection) -> Redis:
    """The raw Redis client (recent messages, location state)."""
    ctx: AppContext = conn.app.state.ctx
    return ctx.redis


async def get_hub(conn: HTTPConnection) -> Hub:
    """The WebSocket hub that fans this instance's events out to its clients."""
    ctx: AppContext = conn.app.state.ctx
    return ctx.hub


async def get_bus(conn: HTTPConnection) -> Bus:
    """The Kafka producer (alerts, scenarios, what exporters publish)."""
    ctx: AppContext = conn.app.state.ctx
    return ctx.bus


async def get_keys(conn: HTTPConnection) -> KeyCache | None:
    """The resolved-key cache, told when a key is revoked; None where the app runs without one."""
    ctx: AppContext = conn.app.state.ctx
    return ctx.keys


async def get_reads(conn: HTTPConnection) -> Reads:
    """The asyncpg pool for hot read-only statements (core/reads.py)."""
    ctx: AppContext = conn.app.state.ctx
    if ctx.reads is None:
        raise RuntimeError("this app context has no read pool")
    return ctx.reads


async def get_runtime(conn: HTTPConnection) -> ConsumerRuntime | None:
    """The lifespan's consumer runtime; None before the lifespan has started it."""
    return getattr(conn.app.state, "runtime", None)


async def is_draining(conn: HTTPConnection) -> bool:
    """True once shutdown has begun: readiness answers 503 so the load balancer stops sending."""
    return bool(conn.app.state.draining)


async def get_schema_heads(conn: HTTPConnection) -> set[str]:
    """The Alembic head revisions this code expects the database to be at."""
    value: set[str] = conn.app.state.alembic_heads
    return value


# scope="function": the commit happens before the response is sent, so a failed commit is an error
# response rather than a 201 for a row that was never stored.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
CacheDep = Annotated[Cache, Depends(get_cache)]
StorageDep = Annotated[BlobStore, Depends(get_storage)]
RedisDep = Annotated[Redis, Depends(get_redis)]
HubDep = Annotated[Hub, Depends(get_hub)]
BusDep = Annotated[Bus, Depends(get_bus)]
KeyCacheDep = Annotated[KeyCache | None, Depends(get_keys)]
ReadsDep = Annotated[Reads, Depends(get_reads)]
RuntimeDep = Annotated[ConsumerRuntime | None, Depends(get_runtime)]
DrainingDep = Annotated[bool, Depends(is_draining)]
SchemaHeadsDep = Annotated[set[str], Depends(get_schema_heads)]


def loader(
    model: type[T],
    param: str,
    *,
    error: type[NotFound] = NotFound,
    what: str | None = None,
    id_type: Any = uuid.UUID,
    options: Iterable[Any] = (),
    lock: bool = False,
) -> Callable[..., Awaitable[T]]:
    """A dependency that loads the `model` row named by the path parameter `param`, or raises `error` (404).

    A domain wraps it in its alias: `CameraDep = Annotated[Camera, Depends(loader(Camera, "camera_id",
    error=CameraNotFound))]`. The parameter keeps its name and type (`id_type`), so the OpenAPI document
    is the one a handler taking `camera_id: uuid.UUID` produces, and the 404 is `get_or_404`'s. `lock`
    row-locks it (SELECT ... FOR UPDATE) for a state change.
    FastAPI resolves dependencies before it validates the body and the query: use a loader on routes
    whose only input is the id, so a malformed request for an unknown id is still a 422, not a 404.
    """
    opts = tuple(options)
    get_kw: dict[str, Any] = {"with_for_update": True} if lock else {}

    async def load(session: AsyncSession, **path: Any) -> T:
        return await get_or_404(session, model, path[param], error=error, what=what, options=opts, **get_kw)

    # The parameter's name is the route's, so the signature is built rather than written.
    load.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("session", inspect.Parameter.KEYWORD_ONLY, annotation=SessionDep),
        inspect.Parameter(param, inspect.Parameter.KEYWORD_ONLY, annotation=id_type),
    ])
    load.__name__ = load.__qualname__ = f"load_{model.__name__}"
    return load


def reader(
    model: type[Any],
    schema: type[BaseModel],
    param: str,
    *,
    error: type[NotFound] = NotFound,
    what: str | None = None,
    id_type: Any = uuid.UUID,
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """For GET routes that only show a row: the `schema` columns of the `model` row named by `param`, as a
    dict, read on the app's asyncpg pool (core/reads.py) with no session and no ORM; or `error` (404),
    worded as `loader`'s. `schema`'s fields must all be columns of the model (TypeError at import).
    Use `loader` wherever the handler changes the row or needs more than its columns.
    """
    (key,) = inspect_model(model).primary_key
    statement = select(*read_columns(model, schema)).where(key == bindparam("ident"))

    async def read(conn: HTTPConnection, **path: Any) -> dict[str, Any]:
        # The pool straight from the app (as get_reads does), not through ReadsDep: one level of
        # dependency solving less on every read.
        ident = path[param]
        row = await (await get_reads(conn)).one(statement, ident=ident)
        if row is None:
            raise missing(model, ident, error=error, what=what)
        return row

    read.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("conn", inspect.Parameter.KEYWORD_ONLY, annotation=HTTPConnection),
        inspect.Parameter(param, inspect.Parameter.KEYWORD_ONLY, annotation=id_type),
    ])
    read.__name__ = read.__qualname__ = f"read_{model.__name__}"
    return read
