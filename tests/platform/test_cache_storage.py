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


async def test_a_value_computed_across_an_invalidation_is_not_kept_and_a_hit_is_one_mget(server, monkeypatch):
    """A write that invalidates while a miss is being computed wins: the value is returned to that caller but
    not stored, so the next read computes again. A hit is one plain MGET (generation and entry together)."""
    cache: Cache = server.ctx.cache
    calls = {"n": 0}

    async def compute_racing_a_write():
        calls["n"] += 1
        if calls["n"] == 1:
            await cache.invalidate("race")  # another request's write, committed meanwhile
        return {"value": calls["n"]}

    assert await cache.get_or_set("race", "k", compute_racing_a_write) == {"value": 1}
    assert await cache.get_or_set("race", "k", compute_racing_a_write) == {"value": 2}  # not served stale
    sent: list[tuple] = []
    execute = type(cache.redis).execute_command

    async def recording(self, *args, **kwargs):
        sent.append(args)
        return await execute(self, *args, **kwargs)

    monkeypatch.setattr(type(cache.redis), "execute_command", recording)
    assert await cache.get_or_set("race", "k", compute_racing_a_write) == {"value": 2}
    assert [args[0] for args in sent] == ["MGET"] and calls["n"] == 2


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
