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


async def test_overlapping_invalidations_share_bumps_and_each_waits_for_one_sent_after_it_began(server):
    """Writers that invalidate at once share generation bumps (core/cache.Cache.invalidate), yet each returns
    only after a bump that was sent after it called: one sent before its commit would not cover it. A
    caller that is cancelled while it waits does not stop the bump the others wait for."""
    import asyncio

    cache = Cache(server.ctx.redis)
    gen_key = "vigil:cache:overlap:gen"
    before = int(await server.ctx.redis.get(gen_key) or 0)
    log: list[tuple[str, int]] = []
    sends = 0
    incr = cache.redis.incr

    async def slow_incr(key):
        nonlocal sends
        sends += 1
        n = sends
        log.append(("send", n))
        await asyncio.sleep(0.02)  # a round trip long enough for callers to arrive while it is in flight
        value = await incr(key)
        log.append(("done", n))
        return value

    cache.redis = type("SlowIncr", (), {"incr": staticmethod(slow_incr)})()

    async def writer(i: int) -> None:
        await asyncio.sleep(0.004 * (i % 10))  # arrivals spread over two round trips
        log.append(("call", i))
        await cache.invalidate("overlap")
        log.append(("return", i))

    writers = [asyncio.create_task(writer(i)) for i in range(30)]
    quitter = asyncio.create_task(writer(99))
    await asyncio.sleep(0.005)
    quitter.cancel()
    await asyncio.gather(*writers)
    assert quitter.cancelled()
    assert 2 <= sends < 10, sends
    for i in range(30):
        called, returned = log.index(("call", i)), log.index(("return", i))
        covering = [n for kind, n in log[called:returned] if kind == "send"
                    and ("done", n) in log[called:returned]]
        assert covering, (i, log)
    assert int(await server.ctx.redis.get(gen_key)) == before + sends
    assert not cache._bumpers and not cache._next_bump


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
