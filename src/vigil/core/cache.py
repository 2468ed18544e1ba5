"""Redis client and a small named cache with explicit, O(1) invalidation and shared hit/miss stats.

Each named cache has a generation counter; invalidating bumps it, so every old entry becomes
unreachable at once and expires by TTL. Invalidations that overlap share one bump (see `invalidate`).
An entry is stored under its name and key with the generation it was computed in as a prefix
(`<gen>:<json>`), so a hit is one plain MGET of the generation and the entry.
When Redis is down the cache steps aside: values are computed from the database and the request still
succeeds.
"""

from __future__ import annotations

import asyncio
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


_SET_IF_GEN = """
if (redis.call('GET', KEYS[1]) or '0') == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[1] .. ':' .. ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


class Cache:
    """Named JSON caches on Redis.

    A hit is one round trip, an MGET of the generation and the entry (a Lua script cost Valkey and the client
    more for the same answer); the entry counts only if it carries the current generation. Hit/miss counts
    are kept in process and flushed to the shared stats hash every few seconds (and before `stats()`).
    """

    def __init__(self, redis: Redis, *, default_ttl_s: int = 300) -> None:
        self.redis = redis
        self.default_ttl_s = default_ttl_s
        self._set_if_gen = redis.register_script(_SET_IF_GEN)
        self._pending: dict[str, int] = {}
        self._counters: dict[tuple[str, str], Any] = {}  # bounded: cache names x (hit, miss)
        self._next_bump: dict[str, asyncio.Future[None]] = {}  # per cache: the bump not sent yet
        self._bumpers: dict[str, asyncio.Task[None]] = {}  # per cache: the task sending bumps, while it runs

    async def get_or_set_json(
        self,
        name: str,
        key: str,
        compute: Callable[[], Awaitable[Any]],
        *,
        ttl_s: int | None = None,
    ) -> bytes:
        """The cached value of (name, key) as JSON bytes, computing and storing it on a miss."""
        gen_key, entry_key = f"{PREFIX}:{name}:gen", f"{PREFIX}:{name}:entry:{key}"
        try:
            found: list[bytes | None] = await self.redis.mget(gen_key, entry_key)  # type: ignore[assignment]
            gen, stored = found
        except RedisError as exc:
            logger.warning("cache {} unavailable, computing without it: {!r}", name, exc)
            CACHE_REQUESTS.labels(name, "bypass").inc()
            return json.dumps(await compute(), default=str).encode()
        tag = (gen or b"0") + b":"
        if stored is not None and stored.startswith(tag):
            self._count(name, "hits")
            hit: bytes = stored[len(tag):]
            return hit
        raw = json.dumps(await compute(), default=str).encode()
        self._count(name, "misses")
        try:
            # Only store if nobody invalidated while we computed; otherwise we would cache stale data.
            await self._set_if_gen(keys=[gen_key, entry_key], args=[tag[:-1], raw, ttl_s or self.default_ttl_s])
        except RedisError as exc:
            logger.warning("cache {} store failed: {!r}", name, exc)
        return raw

    async def get_or_set(
        self,
        name: str,
        key: str,
        compute: Callable[[], Awaitable[Any]],
        *,
        ttl_s: int | None = None,
    ) -> Any:
        """Return the cached JSON value of (name, key), computing and storing it on a miss."""
        return json.loads(await self.get_or_set_json(name, key, compute, ttl_s=ttl_s))

    async def invalidate(self, name: str) -> None:
        """Drop every entry of one named cache; returns once a generation bump sent after this call began
        has been applied.

        Callers that overlap share one bump: while a bump is in flight (it may have been sent before this
        caller's data was committed, so it cannot count for it), newcomers wait together for the next one,
        sent as soon as the one in flight returns. Every caller is still covered by a bump that follows its
        commit, as if each had sent its own, but 32 writers at once cost a few INCRs, not 32 (about 11% of
        the CPU of `POST /people`). A caller that gives up waiting (cancelled) does not stop the bump.
        """
        bump = self._next_bump.get(name)
        if bump is None:
            bump = self._next_bump[name] = asyncio.get_running_loop().create_future()
            if name not in self._bumpers:
                self._bumpers[name] = asyncio.create_task(self._send_bumps(name), name=f"cache {name} invalidation")
        await asyncio.shield(bump)

    async def _send_bumps(self, name: str) -> None:
        """Send the waiting bump of `name`, then the one that gathered meanwhile, until none is waiting.

        Every bump it takes has at least one caller waiting on it, so the task ends within their requests."""
        try:
            while (bump := self._next_bump.pop(name, None)) is not None:
                try:
                    await self.redis.incr(f"{PREFIX}:{name}:gen")
                except RedisError as exc:
                    # The entries expire by TTL; say so loudly because readers may see stale data until then.
                    logger.error("cache {} invalidation failed, stale for up to {}s: {!r}", name,
                                 self.default_ttl_s, exc)
                except BaseException:
                    bump.cancel()
                    raise
                bump.set_result(None)
        finally:
            self._bumpers.pop(name, None)
            if (waiting := self._next_bump.pop(name, None)) is not None:  # only when this task was cancelled
                waiting.cancel()

    def _count(self, name: str, field: str) -> None:
        counter = self._counters.get((name, field))
        if counter is None:
            counter = self._counters[(name, field)] = CACHE_REQUESTS.labels(name, field[:-1])
        counter.inc()
        stat = f"{name}:{field}"
        self._pending[stat] = self._pending.get(stat, 0) + 1

    async def flush_stats(self) -> None:
        """Add the counts of this process to the shared stats hash (kept if Redis is down)."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for stat, n in pending.items():
                    pipe.hincrby(STATS_KEY, stat, n)
                await pipe.execute()
        except RedisError:
            for stat, n in pending.items():
                self._pending[stat] = self._pending.get(stat, 0) + n

    async def run_stats_flusher(self, interval_s: float = 2.0) -> None:
        """Flush the hit/miss counts every few seconds for the app's lifetime (and once when cancelled)."""
        try:
            while True:
                await asyncio.sleep(interval_s)
                await self.flush_stats()
        finally:
            await self.flush_stats()

    async def stats(self) -> dict[str, Any]:
        """Hits, misses and key counts, overall and per named cache."""
        await self.flush_stats()
        raw = await self.redis.hgetall(STATS_KEY)
        per: dict[str, dict[str, int]] = {}
        for field, value in raw.items():
            name, _, kind = (field.decode() if isinstance(field, bytes) else field).rpartition(":")
            per.setdefault(name, {"hits": 0, "misses": 0, "keys": 0})[kind] = int(value)
        keys = 0
        async for k in self.redis.scan_iter(match=f"{PREFIX}:*", count=500):
            parts = k.decode().split(":")
            if len(parts) >= 5:  # vigil:cache:<name>:entry:<key>
                keys += 1
                per.setdefault(parts[2], {"hits": 0, "misses": 0, "keys": 0})["keys"] += 1
        return {
            "backend": "redis",
            "hits": sum(v["hits"] for v in per.values()),
            "misses": sum(v["misses"] for v in per.values()),
            "keys": keys,
            "caches": per,
        }
