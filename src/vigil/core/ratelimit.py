"""Requests per second per API key, counted in Redis so the limit holds across instances and workers.

A fixed one-second window per key: INCR and EXPIRE in one pipelined round trip. Over the limit the caller
answers 429 with `Retry-After`. When Redis is down the limiter fails open (requests pass, one warning every
ten seconds): a limit that takes the whole API down with Redis would be worse than no limit for a moment.
"""

from __future__ import annotations

import math
import time
from typing import Any

from loguru import logger

PREFIX = "vigil:rl"


class RateLimiter:
    """Fixed-window limits per key: `per_key` for every key, `ingest` for keys that hold only `ingest`."""

    def __init__(self, redis: Any, *, per_key: int | None, ingest: int | None) -> None:
        self.redis = redis
        self.per_key = per_key
        self.ingest = ingest
        self._warned_at = 0.0

    @property
    def enabled(self) -> bool:
        return bool(self.per_key or self.ingest)

    def limit_for(self, scopes: frozenset[str]) -> int | None:
        """The limit of a key with these scopes (ingest-only keys may have their own)."""
        if scopes == {"ingest"} and self.ingest:
            return self.ingest
        return self.per_key

    async def hit(self, identity: str, scopes: frozenset[str]) -> float | None:
        """Count one request; None if it may pass, else the seconds until the window reopens."""
        limit = self.limit_for(scopes)
        if not limit:
            return None
        now = time.time()
        window = int(now)
        key = f"{PREFIX}:{identity}:{window}"
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, 2)
                count, _ = await pipe.execute()
        except Exception as exc:
            if now - self._warned_at > 10:
                self._warned_at = now
                logger.warning("rate limiter cannot reach Redis, letting requests through: {!r}", exc)
            return None
        if count <= limit:
            return None
        return max(window + 1 - now, 0.001)


def retry_after_header(seconds: float) -> str:
    """Whole seconds, at least 1, as HTTP's Retry-After wants."""
    return str(max(1, math.ceil(seconds)))
