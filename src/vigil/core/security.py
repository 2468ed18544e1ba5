"""API keys (stored as SHA-256 hashes), scopes, and the deny-by-default authorization dependency."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, WebSocketException, status
from loguru import logger
from sqlalchemy import String, delete, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column
from starlette.requests import HTTPConnection

from vigil.core.db import Base, UUIDPrimaryKey, after_commit, utcnow
from vigil.core.errors import DomainError, Forbidden, NotFound, Unauthorized
from vigil.core.pagination import PageParams, paginate

Scope = Literal["admin", "write", "read", "ingest"]
SCOPES: tuple[str, ...] = ("admin", "write", "read", "ingest")
KEY_PREFIX = "vgl"

# Which granted scopes satisfy a required one. `write` implies `read`; device ingest accepts
# `write` keys too, but an `ingest` key opens nothing except ingest endpoints.
SATISFIED_BY: dict[str, frozenset[str]] = {
    "read": frozenset({"read", "write", "admin"}),
    "write": frozenset({"write", "admin"}),
    "ingest": frozenset({"ingest", "write", "admin"}),
    "admin": frozenset({"admin"}),
}
_METHOD_SCOPE = {"GET": "read", "HEAD": "read", "OPTIONS": "read"}


class ApiKey(UUIDPrimaryKey, Base):
    """An API key; only the SHA-256 of the secret is kept."""

    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(200))
    lookup: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a stored key or the admin key from the environment."""

    key_id: uuid.UUID | None
    name: str
    scopes: frozenset[str]

    def allows(self, required: str) -> bool:
        return bool(self.scopes & SATISFIED_BY[required])


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str, str]:
    """A fresh key as (full key shown once, lookup id, hash to store)."""
    lookup = secrets.token_hex(6)
    key = f"{KEY_PREFIX}_{lookup}_{secrets.token_urlsafe(32)}"
    return key, lookup, hash_key(key)


def _lookup_of(key: str) -> str | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12:
        return None
    return parts[1]


def normalize_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise DomainError(f"unknown scopes: {', '.join(unknown)}")  # the router validates first
    return sorted(set(scopes), key=SCOPES.index)


async def create_key(session: AsyncSession, *, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """Store a new key and return it with its secret, which is never shown again."""
    key, lookup, digest = new_key()
    row = ApiKey(name=name, lookup=lookup, key_hash=digest, scopes=normalize_scopes(scopes))
    session.add(row)
    await session.flush()
    return row, key


async def list_keys(session: AsyncSession, *, page: PageParams) -> dict[str, Any]:
    return await paginate(session, select(ApiKey).order_by(ApiKey.created_at, ApiKey.id), page)


async def delete_key(session: AsyncSession, *, key_id: uuid.UUID, keys: KeyCache | None = None) -> None:
    """Delete a key; once committed, `keys` revokes it here at once and on every other instance."""
    result = await session.execute(delete(ApiKey).where(ApiKey.id == key_id))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"API key {key_id} does not exist.")
    if keys is not None:
        after_commit(session, lambda: keys.revoke(key_id))


async def authenticate(session: AsyncSession, *, key: str, admin_key: str | None) -> Principal | None:
    """Resolve a presented key to a principal, comparing digests in constant time."""
    if admin_key and hmac.compare_digest(key.encode(), admin_key.encode()):
        return Principal(key_id=None, name="admin (VIGIL_ADMIN_KEY)", scopes=frozenset({"admin"}))
    lookup = _lookup_of(key)
    if lookup is None:
        return None
    row = await session.scalar(select(ApiKey).where(ApiKey.lookup == lookup))
    if row is None or not hmac.compare_digest(hash_key(key), row.key_hash):
        return None
    return Principal(key_id=row.id, name=row.name, scopes=frozenset(row.scopes))


def presented_key(conn: HTTPConnection) -> str | None:
    """The key from `Authorization: Bearer`, `X-API-Key`, or (WebSockets only) `?token=`."""
    auth = conn.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    if key := conn.headers.get("x-api-key"):
        return key.strip()
    if conn.scope["type"] == "websocket" and (token := conn.query_params.get("token")):
        return token
    return None


F = TypeVar("F", bound=Callable[..., Any])


def requires(scope: Scope) -> Callable[[F], F]:
    """Mark an endpoint with the scope it needs when the method's default (GET=read, else write) is wrong."""

    def mark(fn: F) -> F:
        fn.__vigil_scope__ = scope  # type: ignore[attr-defined]
        return fn

    return mark


def public(fn: F) -> F:
    """Mark an endpoint under an authorized router as open to everyone."""
    fn.__vigil_public__ = True  # type: ignore[attr-defined]
    return fn


def required_scope(conn: HTTPConnection) -> str:
    endpoint = conn.scope.get("endpoint")
    marked: str | None = getattr(endpoint, "__vigil_scope__", None)
    if marked:
        return marked
    if conn.scope["type"] == "websocket":
        return "read"
    return _METHOD_SCOPE.get(conn.scope["method"], "write")


async def authorize(conn: HTTPConnection) -> Principal | None:
    """Global dependency of `/api/v1` and `/ws`: a valid key with the route's scope, or 401/403.

    AuthMiddleware has normally checked the key before the body was read and left the principal in the
    scope; this dependency still runs on every route (deny by default) and checks the scope again.
    """
    if getattr(conn.scope.get("endpoint"), "__vigil_public__", False):
        return None
    is_ws = conn.scope["type"] == "websocket"
    principal: Principal | None = conn.scope.get(PRINCIPAL_SCOPE_KEY)
    if principal is None and (key := presented_key(conn)):
        principal = await conn.app.state.ctx.keys.resolve(key)
    if principal is None:
        if is_ws:
            raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "missing or invalid API key")
        raise Unauthorized("A valid API key is required (Authorization: Bearer <key> or X-API-Key).")
    conn.state.principal = principal  # set before the scope check: the audit log names who was refused
    needed = required_scope(conn)
    if not principal.allows(needed):
        if is_ws:
            raise WebSocketException(status.WS_1008_POLICY_VIOLATION, f"scope '{needed}' required")
        raise Forbidden(f"This key lacks the '{needed}' scope this route requires.")
    return principal


PRINCIPAL_SCOPE_KEY = "vigil.principal"
REVOKED_CHANNEL = "vigil:auth:revoked"


class KeyCache:
    """Presented key -> principal, in process: bounded (LRU), short TTL, revoked everywhere within a second.

    The env admin key is compared in constant time and never touches the database. A stored key costs one
    query on its first use and nothing until its entry expires. `revoke` drops it here at once, runs the
    local callbacks (closing its WebSockets) and publishes on Redis; every instance listens (`listen`) and
    does the same. While the subscription is down nothing is cached, so a missed message cannot keep a
    deleted key alive; entries made before a reconnect are dropped when it comes back.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, admin_key: str | None,
                 redis: Any = None, ttl_s: float = 10.0, negative_ttl_s: float = 2.0,
                 max_entries: int = 10_000) -> None:
        self.sessionmaker = sessionmaker
        self.admin_key = admin_key.encode() if admin_key else None
        self.admin = Principal(key_id=None, name="admin (VIGIL_ADMIN_KEY)", scopes=frozenset({"admin"}))
        self.redis = redis
        self.ttl_s, self.negative_ttl_s, self.max_entries = ttl_s, negative_ttl_s, max_entries
        self.entries: OrderedDict[str, tuple[Principal | None, float]] = OrderedDict()
        self.on_revoke: list[Callable[[uuid.UUID], Awaitable[None] | None]] = []
        # Key ids of the open streams (the hub's clients), re-checked after the channel was lost.
        self.stream_keys: Callable[[], set[uuid.UUID]] = set
        self.subscribed = redis is None  # no Redis at all (tests of one instance): local revocation only
        self._epoch = 0  # bumped by every revocation: a lookup that raced one is not cached

    async def resolve(self, key: str) -> Principal | None:
        """The principal for a presented key, or None; from memory when it was seen in the last seconds."""
        if self.admin_key is not None and hmac.compare_digest(key.encode(), self.admin_key):
            return self.admin
        digest = hash_key(key)
        now = time.monotonic()
        hit = self.entries.get(digest)
        if hit is not None and hit[1] > now:
            self.entries.move_to_end(digest)
            return hit[0]
        epoch = self._epoch
        lookup = _lookup_of(key)
        principal = None
        if lookup is not None:
            async with self.sessionmaker() as session:
                row = await session.scalar(select(ApiKey).where(ApiKey.lookup == lookup))
            if row is not None and hmac.compare_digest(digest, row.key_hash):
                principal = Principal(key_id=row.id, name=row.name, scopes=frozenset(row.scopes))
        if self.subscribed and epoch == self._epoch:
            self.entries[digest] = (principal, now + (self.ttl_s if principal else self.negative_ttl_s))
            self.entries.move_to_end(digest)
            while len(self.entries) > self.max_entries:
                self.entries.popitem(last=False)
        return principal

    def drop(self, key_id: uuid.UUID) -> None:
        """Forget every cached entry of one key (this instance only)."""
        self._epoch += 1
        for digest in [d for d, (p, _) in self.entries.items() if p is not None and p.key_id == key_id]:
            del self.entries[digest]

    async def _revoked_here(self, key_id: uuid.UUID) -> None:
        self.drop(key_id)
        for callback in self.on_revoke:
            result = callback(key_id)
            if asyncio.iscoroutine(result):
                await result

    async def revoke(self, key_id: uuid.UUID) -> None:
        """A key was deleted: stop it here now, and tell every other instance."""
        await self._revoked_here(key_id)
        if self.redis is not None:
            try:
                await self.redis.publish(REVOKED_CHANNEL, str(key_id))
            except Exception as exc:  # others stop caching while their subscription is down, see listen()
                logger.error("could not announce the revocation of key {}: {!r}", key_id, exc)
        logger.info("api key {} revoked", key_id)

    async def _sweep_streams(self) -> None:
        """Close the streams of keys deleted while revocation messages could not arrive."""
        open_ids = {k for k in self.stream_keys() if k is not None}
        if not open_ids:
            return
        async with self.sessionmaker() as session:
            alive = set(await session.scalars(select(ApiKey.id).where(ApiKey.id.in_(open_ids))))
        for key_id in open_ids - alive:
            await self._revoked_here(key_id)

    async def listen(self, *, reconnect_s: float = 0.5) -> None:
        """Apply revocations announced by any instance; runs for the app's lifetime."""
        lost = False
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(REVOKED_CHANNEL)
                self.entries.clear()  # anything cached while unsubscribed may have missed a revocation
                if lost:
                    await self._sweep_streams()
                self.subscribed, lost = True, False
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "message":
                        try:
                            key_id = uuid.UUID(message["data"].decode())
                        except (ValueError, AttributeError):
                            continue
                        await self._revoked_here(key_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.subscribed:
                    logger.warning("key revocation channel lost, not caching keys until it is back: {!r}", exc)
                self.subscribed, lost = False, True
                self.entries.clear()
                await asyncio.sleep(reconnect_s)
            finally:
                try:
                    await pubsub.aclose()
                except Exception:  # noqa: S110 - the connection is already gone
                    pass


async def current_principal(conn: HTTPConnection) -> Principal:
    principal: Principal = conn.state.principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
