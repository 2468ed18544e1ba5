"""The clients one app instance (or runner) holds, handed to consumers and background work."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from vigil.core.config import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from vigil.core.cache import Cache
    from vigil.core.messaging import Bus
    from vigil.core.ratelimit import RateLimiter
    from vigil.core.reads import Reads
    from vigil.core.security import KeyCache
    from vigil.core.storage import BlobStore
    from vigil.core.ws import Hub


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    cache: Cache
    bus: Bus
    redpanda: Bus
    hub: Hub
    storage: BlobStore
    qdrant: Any  # AsyncQdrantClient; opened lazily by the domains that need it
    read_sessionmaker: async_sessionmaker[AsyncSession] | None = None  # autocommit, for GET/HEAD
    keys: KeyCache | None = None  # resolved API keys, revoked across instances
    limiter: RateLimiter | None = None
    reads: Reads | None = None  # hot read-only statements on their own asyncpg pool (core/reads.py)
    # Resources a domain opens in its lifespan hook (registry.lifespan_hooks), by domain name.
    extensions: dict[str, Any] = field(default_factory=dict)
