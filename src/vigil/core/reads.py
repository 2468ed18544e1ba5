"""`Reads`: hot read-only queries run straight on an asyncpg pool, from SQLAlchemy Core statements.

A read by primary key through the ORM cost about 550-750 us of CPU in process: the session, the pool
checkout through a greenlet, compiling and caching the statement, and building the instance. The same
statement on an asyncpg pool costs about 140 us, which is what a hand-written app pays. `Reads` keeps the
models as the only schema: a statement is a SQLAlchemy `select` of plain columns, compiled once for
asyncpg (`$1` parameters) once per shape, and each row comes back as a dict for a response model.

It only takes statements it can run exactly as SQLAlchemy would: plain SQLAlchemy column types (no
`TypeDecorator` or custom type, whose Python-side conversion it would skip) and no expanding `IN`
parameters. Anything else is a `TypeError` when the statement is first used, so a test catches it.

Failures are SQLAlchemy's, so the error handlers and consumers need no second rule: a connection that
cannot be made or was lost is `OperationalError` (503), no free connection within the timeout is
SQLAlchemy's pool `TimeoutError` (503 with Retry-After), and any other database error is `DBAPIError`.
The pool opens connections on first use and at most `max_size` of them; a connection the database
dropped fails its one query, and then every open connection is replaced on its next use.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import orjson
import pydantic_core
from fastapi.responses import Response
from sqlalchemy import Select
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.types import TypeDecorator, TypeEngine

_DIALECT = pg_asyncpg.dialect()  # type: ignore[no-untyped-call]
_CACHE_LIMIT = 512  # statement shapes kept; a page with filters is one shape per combination used
# InternalClientError: a connection the server terminated while it sat idle in the pool can fail its next
# query with "cannot switch to state ...; another operation is in progress" (the FATAL notice was read first).
_CONNECTION_ERRORS = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                      asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError, asyncpg.InternalClientError)


class _Compiled:
    __slots__ = ("compiled", "names")

    def __init__(self, statement: Select[Any], key: Any = None) -> None:
        for column in statement.selected_columns:
            _check_type(column.type, f"column {column.key!r}")
        # Compiled against its cache key, so the bound values of an equal statement can be swapped in.
        compiled = statement.compile(dialect=_DIALECT, cache_key=key)
        for bind in compiled.binds.values():
            if bind.expanding:
                raise TypeError(f"Reads cannot run an expanding parameter ({bind.key!r}); use = ANY(:param)")
            _check_type(bind.type, f"parameter {bind.key!r}")
        self.compiled = compiled
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())

    def args(self, params: dict[str, Any], extracted: Any) -> list[Any]:
        """The positional arguments: values given now, else the statement's own (`extracted` from this
        statement when the compiled form was made for an equal one)."""
        values = self.compiled.construct_params(params or None, extracted_parameters=extracted)
        return [values[name] for name in self.names]


def _check_type(type_: TypeEngine[Any], what: str) -> None:
    if isinstance(type_, TypeDecorator) or not type(type_).__module__.startswith("sqlalchemy."):
        raise TypeError(f"Reads runs only plain SQLAlchemy types; {what} is {type(type_).__name__}")


def _decode_json(text: str) -> Any:
    """pydantic-core's parser (about 5x json.loads on small objects); json.loads for what it refuses and
    the stdlib takes (nesting past about 200 levels, numbers of thousands of digits)."""
    try:
        return pydantic_core.from_json(text)
    except ValueError:
        return json.loads(text)


class _ReadConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pool connection that goes back to the pool without a reset query.

    asyncpg's pool sends `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` on every release: one
    more round trip per read, as costly as the read itself. This pool runs only the SELECTs `Reads` compiled,
    which take no advisory locks, open no cursors, LISTEN to nothing and SET nothing, so there is nothing to
    reset. An open transaction is still rolled back on release (asyncpg does that whatever this returns).
    """

    def get_reset_query(self) -> str:
        return ""


def _encode_uuid(value: uuid.UUID | str) -> bytes:
    return (value if isinstance(value, uuid.UUID) else uuid.UUID(value)).bytes


_new_object = object.__new__
_set_slot = object.__setattr__
_UUID = uuid.UUID
_UNKNOWN_SAFETY = uuid.SafeUUID.unknown


def _decode_uuid(data: bytes) -> uuid.UUID:
    """A plain `uuid.UUID`. asyncpg's own UUID type is a subclass that pydantic-core does not recognise by
    type: it encodes 50 of them in about 68 us, against 5 us for plain ones.

    Built the way `UUID.__init__` ends, setting its two slots, without the argument checks that precede
    that (1.7 against 0.8 us each: a page of 50 alerts has 50 of them). The 16 bytes are the server's.
    """
    value = _new_object(_UUID)
    _set_slot(value, "int", int.from_bytes(data))
    _set_slot(value, "is_safe", _UNKNOWN_SAFETY)
    return value


async def _init_connection(conn: asyncpg.Connection) -> None:
    # As SQLAlchemy's asyncpg dialect decodes them: JSON values as Python objects.
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=_decode_json, schema="pg_catalog")
    await conn.set_type_codec("uuid", encoder=_encode_uuid, decoder=_decode_uuid, schema="pg_catalog",
                              format="binary")


class Reads:
    """An asyncpg pool for read-only statements; `one` and `all` return rows as dicts."""

    def __init__(self, dsn: str, *, max_size: int, acquire_timeout_s: float, connect_timeout_s: float = 5.0,
                 application_name: str = "vigil-reads") -> None:
        self._dsn = dsn.replace("postgresql+asyncpg://", "postgresql://", 1)
        self._max_size = max_size
        self._acquire_timeout_s = acquire_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._application_name = application_name
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        # Reads wait for a connection in arrival order. asyncpg's pool queue lets a newcomer take a connection
        # that was just released ahead of a reader already woken for it, which then queues again at the
        # back: now that a release costs no round trip, that doubled the p99 of the alerts page at 32
        # connections. asyncio's Semaphore does not let newcomers pass its waiters.
        self._turns = asyncio.Semaphore(max_size)
        self._compiled: dict[Any, _Compiled] = {}
        self._by_identity: dict[int, tuple[Select[Any], _Compiled, Any]] = {}

    def _statement(self, statement: Select[Any]) -> tuple[_Compiled, Any]:
        """The compiled form of `statement`, and the bound values to run it with.

        Cached by SQLAlchemy's own cache key (`_generate_cache_key`, what its compiled cache uses), so a
        statement built per request, such as a filtered page, compiles once per shape; the key's bound
        values are the ones of this statement.

        A statement object seen before (a module constant, such as a `reader`'s) skips even the cache key
        (about 25 us): statements are immutable, so the same object has the same values. The entry holds the
        statement itself, so its id cannot be reused by another object while the entry lives.
        """
        seen = self._by_identity.get(id(statement))
        if seen is not None and seen[0] is statement:
            return seen[1], seen[2]
        key = statement._generate_cache_key()
        if key is None:  # a statement SQLAlchemy cannot cache either: compile it each time
            return _Compiled(statement), None
        compiled = self._compiled.get(key.key)
        if compiled is None:
            if len(self._compiled) >= _CACHE_LIMIT:
                self._compiled.clear()
            compiled = self._compiled[key.key] = _Compiled(statement, key)
        if len(self._by_identity) >= _CACHE_LIMIT:
            self._by_identity.clear()
        self._by_identity[id(statement)] = (statement, compiled, key.bindparams)
        return compiled, key.bindparams

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self._dsn, min_size=0, max_size=self._max_size, init=_init_connection,
                        connection_class=_ReadConnection,
                        timeout=self._connect_timeout_s,
                        server_settings={"application_name": self._application_name, "timezone": "UTC"})
        return self._pool

    async def _fetch(self, statement: Select[Any], params: dict[str, Any]) -> list[asyncpg.Record]:
        compiled, extracted = self._statement(statement)
        args = compiled.args(params, extracted)
        sql: str = compiled.compiled.string
        try:
            pool = await self._get_pool()
            try:
                # asyncio.timeout, not acquire(timeout=): asyncpg applies that with wait_for, which makes a
                # task per call (about 12% of a read by id's CPU here).
                async with asyncio.timeout(self._acquire_timeout_s):
                    await self._turns.acquire()
                    try:
                        conn = await pool.acquire()
                    except BaseException:
                        self._turns.release()
                        raise
            except TimeoutError as exc:
                raise PoolTimeout(f"no read connection was free within {self._acquire_timeout_s}s") from exc
            try:
                rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
                return rows
            finally:
                try:
                    await pool.release(conn)
                finally:
                    self._turns.release()
        except PoolTimeout:
            raise
        except (asyncpg.DataError, OverflowError) as exc:  # a value asyncpg cannot send: the caller's (422)
            raise DBAPIError(sql, args, exc) from exc
        except _CONNECTION_ERRORS as exc:
            # As SQLAlchemy invalidates its pool: a lost connection means the database likely dropped them
            # all (a restart), so every open one is replaced on its next use instead of failing in turn.
            if self._pool is not None:
                await self._pool.expire_connections()
            raise OperationalError(sql, args, exc) from exc
        except asyncpg.PostgresError as exc:
            raise DBAPIError(sql, args, exc) from exc

    async def one(self, statement: Select[Any], **params: Any) -> dict[str, Any] | None:
        """The first row of `statement` as a dict, or None."""
        rows = await self._fetch(statement, params)
        return dict(rows[0]) if rows else None

    async def all(self, statement: Select[Any], **params: Any) -> list[dict[str, Any]]:
        """Every row of `statement`, as dicts."""
        rows = await self._fetch(statement, params)
        if not rows:
            return []
        # The names once, then each row's values: dict(record) looks every name up again (59 against 42 us
        # for a page of 50 alerts).
        names = tuple(rows[0].keys())
        return [dict(zip(names, row, strict=True)) for row in rows]

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def rows_to_json(value: Any) -> bytes:
    """`value` (rows from `Reads`, or a page of them) as JSON bytes, as the route's response model would
    encode it, without validating it into that model first.

    orjson, with UTC times ending in `Z` as pydantic writes them: the same bytes as pydantic-core's `to_json`
    (floats included, since orjson 3.12), in a third of the time: 45-53 against 134-138 us for a page of 50
    alerts (and validating into `Page[AlertRead]` first would cost about 215 us more). What orjson refuses,
    an integer beyond 64 bits in a JSON column, goes to pydantic-core.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_UTC_Z)
    except orjson.JSONEncodeError:
        return pydantic_core.to_json(value)


def json_rows(value: Any) -> Response:
    """`rows_to_json(value)` as a JSON response.

    That holds only for rows whose keys are the model's fields and whose values are the plain types the
    model declares (what `read_columns` selects: UUIDs, times, numbers, strings, JSON), so only routes that
    return such rows use it; they keep their `response_model` for the OpenAPI document, and tests check
    that the bytes equal the model's.
    """
    return Response(rows_to_json(value), media_type="application/json")
