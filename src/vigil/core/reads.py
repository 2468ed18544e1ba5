"""`Reads`: hot read-only queries run straight on an asyncpg pool, from SQLAlchemy Core statements.

A read by primary key through the ORM cost about 550-750 us of CPU in process: the session, the pool
checkout through a greenlet, compiling and caching the statement, and building the instance. The same
statement on an asyncpg pool costs about 140 us, which is what a hand-written app pays. `Reads` keeps the
models as the only schema: a statement is a SQLAlchemy `select` of plain columns, compiled once for
asyncpg (`$1` parameters), and each row comes back as a dict for a response model.

It only takes statements it can run exactly as SQLAlchemy would: plain SQLAlchemy column types (no
`TypeDecorator` or custom type, whose Python-side conversion it would skip) and no expanding `IN`
parameters. Anything else is a `TypeError` when the statement is first used, so a test catches it.

Failures are SQLAlchemy's, so the error handlers and consumers need no second rule: a connection that
cannot be made or was lost is `OperationalError` (503), no free connection within the timeout is
SQLAlchemy's pool `TimeoutError` (503 with Retry-After), and any other database error is `DBAPIError`.
The pool opens connections on first use and at most `max_size` of them; a connection the database
dropped fails its one query and is replaced on the next.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
from sqlalchemy import Select
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.types import TypeDecorator, TypeEngine

_DIALECT = pg_asyncpg.dialect()  # type: ignore[no-untyped-call]
_CACHE_LIMIT = 256  # compiled statements kept; statements are module constants, so this is never reached
_CONNECTION_ERRORS = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                      asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError)


class _Compiled:
    __slots__ = ("defaults", "names", "sql", "statement")

    def __init__(self, statement: Select[Any]) -> None:
        for column in statement.selected_columns:
            _check_type(column.type, f"column {column.key!r}")
        compiled = statement.compile(dialect=_DIALECT)
        for bind in compiled.binds.values():
            if bind.expanding:
                raise TypeError(f"Reads cannot run an expanding parameter ({bind.key!r}); use = ANY(:param)")
            _check_type(bind.type, f"parameter {bind.key!r}")
        self.statement = statement  # held, so its id is not reused while cached
        self.sql: str = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        self.defaults: dict[str, Any] = dict(compiled.params)


def _check_type(type_: TypeEngine[Any], what: str) -> None:
    if isinstance(type_, TypeDecorator) or not type(type_).__module__.startswith("sqlalchemy."):
        raise TypeError(f"Reads runs only plain SQLAlchemy types; {what} is {type(type_).__name__}")


async def _init_connection(conn: asyncpg.Connection) -> None:
    # As SQLAlchemy's asyncpg dialect decodes them: JSON values as Python objects.
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class Reads:
    """An asyncpg pool for read-only statements; `one` and `all` return rows as dicts."""

    def __init__(self, dsn: str, *, max_size: int, acquire_timeout_s: float, connect_timeout_s: float = 5.0) -> None:
        self._dsn = dsn.replace("postgresql+asyncpg://", "postgresql://", 1)
        self._max_size = max_size
        self._acquire_timeout_s = acquire_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._compiled: dict[int, _Compiled] = {}

    def _statement(self, statement: Select[Any]) -> _Compiled:
        compiled = self._compiled.get(id(statement))
        if compiled is None or compiled.statement is not statement:
            if len(self._compiled) >= _CACHE_LIMIT:
                self._compiled.clear()
            compiled = self._compiled[id(statement)] = _Compiled(statement)
        return compiled

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self._dsn, min_size=0, max_size=self._max_size, init=_init_connection,
                        timeout=self._connect_timeout_s,
                        server_settings={"application_name": "vigil-reads", "timezone": "UTC"})
        return self._pool

    async def _fetch(self, statement: Select[Any], params: dict[str, Any]) -> list[asyncpg.Record]:
        compiled = self._statement(statement)
        args = [params[name] if name in params else compiled.defaults[name] for name in compiled.names]
        try:
            pool = await self._get_pool()
            try:
                conn = await pool.acquire(timeout=self._acquire_timeout_s)
            except TimeoutError as exc:
                raise PoolTimeout(f"no read connection was free within {self._acquire_timeout_s}s") from exc
            try:
                rows: list[asyncpg.Record] = await conn.fetch(compiled.sql, *args)
                return rows
            finally:
                await pool.release(conn)
        except PoolTimeout:
            raise
        except (asyncpg.DataError, OverflowError) as exc:  # a value asyncpg cannot send: the caller's (422)
            raise DBAPIError(compiled.sql, args, exc) from exc
        except _CONNECTION_ERRORS as exc:
            raise OperationalError(compiled.sql, args, exc) from exc
        except asyncpg.PostgresError as exc:
            raise DBAPIError(compiled.sql, args, exc) from exc

    async def one(self, statement: Select[Any], **params: Any) -> dict[str, Any] | None:
        """The first row of `statement` as a dict, or None."""
        rows = await self._fetch(statement, params)
        return dict(rows[0]) if rows else None

    async def all(self, statement: Select[Any], **params: Any) -> list[dict[str, Any]]:
        """Every row of `statement`, as dicts."""
        return [dict(row) for row in await self._fetch(statement, params)]

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
