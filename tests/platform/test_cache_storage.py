"""Cache helper (hits, misses, O(1) invalidation, Redis outage) and local blob storage."""

import pytest

from vigil.core.cache import Cache
from vigil.core.storage import LocalBlobStore, content_key


async def test_cache_hit_miss_invalidate_and_stats(server, client):
    cache: Cache = server.ctx.cache
    calls = {"n": 0}

    async def compute():
        calls["n"] += 1
        return {"value": calls["n"]}

    assert await cache.get_or_set("demo", "k", compute) == {"value": 1}
    assert await cache.get_or_set("demo", "k", compute) == {"value": 1}
    assert calls["n"] == 1
    stats = (await client.get("/api/v1/cache/stats")).json()
    assert stats["backend"] == "redis"
    assert stats["caches"]["demo"] == {"hits": 1, "misses": 1, "keys": 1}
    assert (await client.post("/api/v1/cache/invalidate/demo")).status_code == 204
    assert await cache.get_or_set("demo", "k", compute) == {"value": 2}
    assert (await client.get("/api/v1/cache/stats")).json()["caches"]["demo"]["misses"] == 2


async def test_cache_steps_aside_when_redis_is_down(server, stack):
    cache: Cache = server.ctx.cache
    valkey = stack.processes["valkey"]
    valkey.stop()
    try:
        async def compute():
            return [1, 2, 3]

        assert await cache.get_or_set("demo", "k", compute) == [1, 2, 3]
        await cache.invalidate("demo")  # logged, not raised
    finally:
        valkey.start()


async def test_local_blob_store_roundtrip(tmp_path):
    store = LocalBlobStore(tmp_path / "blobs")
    data = b"\x89PNG fake bytes"
    key = content_key(data, prefix="plates/frames", ext="png")
    assert key == content_key(data, prefix="plates/frames", ext=".png")
    await store.put(key, data)
    await store.put(key, data)  # same content, same key: a no-op
    assert await store.exists(key)
    assert await store.get(key) == data
    await store.delete(key)
    assert not await store.exists(key)
    await store.check()
    with pytest.raises(ValueError):
        await store.put("../outside", b"x")
