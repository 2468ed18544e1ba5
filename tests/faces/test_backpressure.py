"""Back-pressure instead of waiting: a full encoder queue and an exhausted database pool are 503
problems with Retry-After (never 500), and a refused upload leaves nothing behind."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from tests.faces import images
from tests.faces.test_events import make_event
from tests.faces.test_images import IMAGES, upload
from vigil.faces.runtime import EXTENSION

pytestmark = pytest.mark.fault


def variant(i: int) -> bytes:
    """The astronaut with one pixel changed: a new photo (new hash) with the same face."""
    pixels = images.astronaut_pixels().copy()
    pixels[0, i] = (i * 41) % 256
    return images.encode(pixels)


async def test_a_full_encoder_queue_answers_503_with_retry_after(server, client, monkeypatch):
    runtime = server.ctx.extensions[EXTENSION]
    await make_event(client)
    assert (await upload(client, variant(0))).status_code == 201  # the pool is warm
    monkeypatch.setattr(runtime, "queue_size", 0)  # only the images being encoded, none waiting
    photos = [variant(i) for i in range(1, 6)]  # two encode, three find no room
    results = await asyncio.gather(*(upload(client, p, name=f"p{i}.jpg") for i, p in enumerate(photos)))
    statuses = sorted(r.status_code for r in results)
    assert set(statuses) == {201, 503}, statuses
    refused = [r for r in results if r.status_code == 503]
    for r in refused:
        assert r.headers["content-type"].startswith("application/problem+json")
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["title"] == "Face encoder busy"
    stored = (await client.get(IMAGES, params={"event_code": "wedding-2026", "limit": 100})).json()["items"]
    assert len(stored) == 1 + statuses.count(201)  # nothing half-written for the refused ones
    # Once the burst is over, the same photos go in.
    monkeypatch.undo()
    for r, p in zip(results, photos, strict=True):
        if r.status_code == 503:
            assert (await upload(client, p)).status_code == 201


async def test_an_exhausted_pool_is_503_with_retry_after_not_500(base_settings):
    """A real pool of one connection, held: the next request waits pool_timeout, then 503 + Retry-After."""
    import httpx
    from fastapi import FastAPI
    from sqlalchemy.ext.asyncio import create_async_engine

    from vigil.core.errors import install_error_handlers

    engine = create_async_engine(base_settings.database_url, pool_size=1, max_overflow=0, pool_timeout=0.3)
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/probe")
    async def probe() -> dict:
        async with engine.connect() as conn:
            return {"one": await conn.scalar(text("SELECT 1"))}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            assert (await c.get("/probe")).json() == {"one": 1}
            async with engine.connect() as held:
                await held.execute(text("SELECT 1"))
                r = await c.get("/probe")
            assert r.status_code == 503, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.headers["retry-after"] == "1" and r.json()["title"] == "Database busy"
            assert (await c.get("/probe")).status_code == 200  # the connection is back
    finally:
        await engine.dispose()
