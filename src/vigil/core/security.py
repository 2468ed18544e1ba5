"""API keys (stored as SHA-256 hashes), scopes, and the deny-by-default authorization dependency."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, WebSocketException, status
from sqlalchemy import String, delete, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from starlette.requests import HTTPConnection

from vigil.core.db import Base, UUIDPrimaryKey, utcnow
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


async def list_keys(session: AsyncSession, *, page: PageParams) -> dict:
    return await paginate(session, select(ApiKey).order_by(ApiKey.created_at, ApiKey.id), page)


async def delete_key(session: AsyncSession, *, key_id: uuid.UUID) -> None:
    result = await session.execute(delete(ApiKey).where(ApiKey.id == key_id))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"API key {key_id} does not exist.")


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
    marked = getattr(endpoint, "__vigil_scope__", None)
    if marked:
        return marked
    if conn.scope["type"] == "websocket":
        return "read"
    return _METHOD_SCOPE.get(conn.scope["method"], "write")


async def authorize(conn: HTTPConnection) -> Principal | None:
    """Global dependency of `/api/v1` and `/ws`: a valid key with the route's scope, or 401/403."""
    if getattr(conn.scope.get("endpoint"), "__vigil_public__", False):
        return None
    is_ws = conn.scope["type"] == "websocket"
    key = presented_key(conn)
    principal = None
    if key:
        settings = conn.app.state.settings
        admin = settings.admin_key.get_secret_value() if settings.admin_key else None
        async with conn.app.state.ctx.sessionmaker() as session:
            principal = await authenticate(session, key=key, admin_key=admin)
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


def current_principal(conn: HTTPConnection) -> Principal:
    return conn.state.principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
