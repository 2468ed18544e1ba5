"""Redis client and a small named cache with explicit, O(1) invalidation and shared hit/miss stats.

Each named cache has a generation counter; invalidating bumps it, so every old entry becomes
unreachable at once and expires by TTL. When Redis is down the cache steps aside: values are
computed from the database and the request still succeeds.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger
from redis.asyncio import Redis
from redis.exceptions import RedisError

from vigil.core.metrics import CACHE_REQUESTS

PREFIX = "vigil:cache"
STATS_KEY = f"{PREFIX}:stats"


def create_redis(url: str, *, timeout_s: float = 2.0) -> Redis:
    return Redis.from_url(
        url, decode_responses=False, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
        health_check_interval=30,
    )


class Cache:
    """Named JSON caches on Redis."""

    def __init__(self, redis: Redis, *, default_ttl_s: int = 300) -> None:
        self.redis = redis
        self.default_ttl_s = default_ttl_s

    async def _generation(self, name: str) -> int:
        raw = await self.redis.get(f"{PREFIX}:{name}:gen")
        return int(raw) if raw else 0

    async def get_or_set(
        self,
        name: str,
        key: str,
        compute: Callable[[], Awaitable[Any]],
        *,
        ttl_s: int | None = None,
    ) -> Any:
        """Return the cached JSON value of (name, key), computing and storing it on a miss."""
        try:
            gen = await self._generation(name)
            full_key = f"{PREFIX}:{name}:{gen}:{key}"
            raw = await self.redis.get(full_key)
        except RedisError as exc:
            logger.warning("cache {} unavailable, computing without it: {!r}", name, exc)
            CACHE_REQUESTS.labels(name, "bypass").inc()
            return await compute()
        if raw is not None:
            await self._count(name, "hits")
            return json.loads(raw)
        value = await compute()
        await self._count(name, "misses")
        try:
            # Only store if nobody invalidated while we computed; otherwise we would cache stale data.
            if await self._generation(name) == gen:
                await self.redis.set(full_key, json.dumps(value, default=str), ex=ttl_s or self.default_ttl_s)
        except RedisError as exc:
            logger.warning("cache {} store failed: {!r}", name, exc)
        return value

    async def invalidate(self, name: str) -> None:
        """Drop every entry of one named cache."""
        try:
            await self.redis.incr(f"{PREFIX}:{name}:gen")
        except RedisError as exc:
            # The entries expire by TTL; say so loudly because readers may see stale data until then.
            logger.error("cache {} invalidation failed, stale for up to {}s: {!r}", name, self.default_ttl_s, exc)

    async def _count(self, name: str, field: str) -> None:
        CACHE_REQUESTS.labels(name, field[:-1]).inc()
        try:
            await self.redis.hincrby(STATS_KEY, f"{name}:{field}", 1)
        except RedisError:
            pass

    async def stats(self) -> dict[str, Any]:
        """Hits, misses and key counts, overall and per named cache."""
        raw = await self.redis.hgetall(STATS_KEY)
        per: dict[str, dict[str, int]] = {}
        for field, value in raw.items():
            name, _, kind = field.decode().rpartition(":")
            per.setdefault(name, {"hits": 0, "misses": 0, "keys": 0})[kind] = int(value)
        keys = 0
        async for k in self.redis.scan_iter(match=f"{PREFIX}:*", count=500):
            parts = k.decode().split(":")
            if len(parts) >= 5:  # vigil:cache:<name>:<gen>:<key>
                keys += 1
                per.setdefault(parts[2], {"hits": 0, "misses": 0, "keys": 0})["keys"] += 1
        return {
            "backend": "redis",
            "hits": sum(v["hits"] for v in per.values()),
            "misses": sum(v["misses"] for v in per.values()),
            "keys": keys,
            "caches": per,
        }
