"""Request-scoped dependencies shared by every router: the unit-of-work session and app clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.core.cache import Cache
from vigil.core.config import Settings
from vigil.core.db import session_scope
from vigil.core.storage import BlobStore

READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Every dependency is `async def`, even when it only reads an attribute: FastAPI runs a plain `def`
# dependency in the thread pool, a thread hop per request each (tests/platform/test_perf_auth.py checks).


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


async def get_settings_dep(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


async def get_cache(request: Request) -> Cache:
    value: Cache = request.app.state.ctx.cache
    return value


async def get_storage(request: Request) -> BlobStore:
    value: BlobStore = request.app.state.ctx.storage
    return value


# scope="function": the commit happens before the response is sent, so a failed commit is an error
# response rather than a 201 for a row that was never stored.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
CacheDep = Annotated[Cache, Depends(get_cache)]
StorageDep = Annotated[BlobStore, Depends(get_storage)]
