"""What the request-path speed-ups must keep: revocation at once and across instances (HTTP and WebSockets),
keys checked before the body, per-key rate limits, the directory invalidated by writes, access logs with
request ids and no secrets, and no uvicorn trace middleware by accident."""

import asyncio
import logging
import os
import uuid

import httpx
import pytest
import pytest_asyncio
import websockets
from loguru import logger
from pydantic import SecretStr

from tests.conftest import ADMIN_KEY, auth, start_server, stop_server
from vigil.core.devstack import free_port
from vigil.core.logging import setup_logging


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def other(server, base_settings, data_dir):
    """A second app instance on the same PostgreSQL and Redis, with a long key-cache TTL (so only the
    revocation message can stop a cached key) and rate limits."""
    settings = base_settings.model_copy(update={
        "port": free_port(), "data_dir": data_dir / "app-h2", "qdrant_path": data_dir / "app-h2" / "qdrant",
        "admin_key": SecretStr(ADMIN_KEY), "key_cache_ttl_s": 600.0, "rate_limit_per_key": 20,
        "rate_limit_ingest": 3,
    })
    running, task = await start_server(settings)
    try:
        yield running
    finally:
        await stop_server(running, task)


async def _status_until(client: httpx.AsyncClient, url: str, key: str, want: int, tries: int = 100) -> int:
    status = 0
    for _ in range(tries):
        status = (await client.get(url, headers=auth(key))).status_code
        if status == want:
            return status
        await asyncio.sleep(0.05)
    return status


async def test_deleted_key_refused_here_at_once_and_on_another_instance(server, other, client, make_key):
    key = await make_key("read")
    kid = (await client.get("/api/v1/auth/keys")).json()["items"][-1]["id"]
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as a, \
            httpx.AsyncClient(base_url=other.url, timeout=10) as b:
        assert (await a.get("/api/v1/people", headers=auth(key))).status_code == 200
        assert (await b.get("/api/v1/people", headers=auth(key))).status_code == 200
        # Both instances hold the key in memory now; the other one would keep it for 600 s.
        assert any(p is not None and str(p.key_id) == kid for p, _ in other.ctx.keys.entries.values())
        assert (await client.delete(f"/api/v1/auth/keys/{kid}")).status_code == 204
        assert (await a.get("/api/v1/people", headers=auth(key))).status_code == 401  # at once, no retry
        assert await _status_until(b, "/api/v1/people", key, 401) == 401
        assert not any(p is not None and str(p.key_id) == kid for p, _ in other.ctx.keys.entries.values())


async def test_deleting_a_key_closes_its_websockets_with_1008_on_every_instance(server, other, client, make_key):
    key = await make_key("read")
    keep = await make_key("read", name="kept")
    kid = next(k["id"] for k in (await client.get("/api/v1/auth/keys")).json()["items"] if k["name"] == "test")
    async with websockets.connect(f"{server.ws_url}/ws/alerts", additional_headers=auth(key)) as here, \
            websockets.connect(f"{other.ws_url}/ws/alerts?token={key}") as there, \
            websockets.connect(f"{other.ws_url}/ws/alerts", additional_headers=auth(keep)) as kept:
        await asyncio.sleep(0.2)
        assert (await client.delete(f"/api/v1/auth/keys/{kid}")).status_code == 204
        for ws in (here, there):
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd.code == 1008
        with pytest.raises(TimeoutError):  # a stream of another key stays open
            await asyncio.wait_for(kept.recv(), 0.5)


async def _raw_request(url: str, head: str, body_start: bytes) -> tuple[bytes, bool]:
    """Send headers and the first bytes of a body, then read the answer; returns (answer, closed by server)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head.encode() + b"\r\n" + body_start)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(65536), 10)
        rest = await asyncio.wait_for(reader.read(65536), 10)  # b"" once the server has closed
        while rest:
            answer += rest
            rest = await asyncio.wait_for(reader.read(65536), 10)
        return answer, True
    finally:
        writer.close()


@pytest.mark.parametrize("scopes, status", [((), 401), (("read",), 403), (("ingest",), 403)])
async def test_key_is_checked_before_a_huge_body_is_read(server, make_key, scopes, status):
    headers = ["POST /api/v1/people HTTP/1.1", "Host: test", "Content-Type: application/json",
               "Content-Length: 30000000"]
    if scopes:
        headers.append(f"Authorization: Bearer {await make_key(*scopes)}")
    answer, closed = await _raw_request(server.url, "\r\n".join(headers) + "\r\n", b'{"global_id": 1')
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == str(status).encode(), answer[:300]
    assert b"connection: close" in rest.lower()
    assert b"application/problem+json" in rest
    assert closed


async def test_scope_is_still_enforced_per_route(server, make_key, anon):
    read = await make_key("read")
    assert (await anon.get("/api/v1/people")).status_code == 401
    async with httpx.AsyncClient(base_url=server.url, headers=auth(read)) as c:
        assert (await c.get("/api/v1/people")).status_code == 200
        r = await c.post("/api/v1/people", json={"global_id": 1, "name": "x"})
        assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
        assert (await c.get("/api/v1/auth/keys")).status_code == 403  # admin only
        assert (await c.get("/api/v1/no-such-route")).status_code == 404
    assert (await anon.get("/liveness")).status_code == 200


async def test_rate_limit_429_with_retry_after_and_keys_do_not_share_it(other, make_key):
    busy, calm, ingest = await make_key("read"), await make_key("read"), await make_key("ingest")
    async with httpx.AsyncClient(base_url=other.url, timeout=20) as c:
        results = await asyncio.gather(*(c.get("/api/v1/people", headers=auth(busy)) for _ in range(80)))
        limited = [r for r in results if r.status_code == 429]
        assert limited and all(r.status_code in (200, 429) for r in results)
        assert int(limited[0].headers["retry-after"]) >= 1
        assert limited[0].headers["content-type"] == "application/problem+json"
        assert limited[0].json()["status"] == 429
        assert (await c.get("/api/v1/people", headers=auth(calm))).status_code == 200
        # Ingest-only keys have their own (here lower) limit.
        posts = await asyncio.gather(*(c.post("/api/v1/plates/events", headers=auth(ingest), json={})
                                       for _ in range(30)))
        assert any(r.status_code == 429 for r in posts)
        assert {r.status_code for r in posts} <= {422, 429}


async def test_directory_is_invalidated_by_every_write(client):
    assert (await client.get("/api/v1/people/directory")).json() == {}
    assert (await client.get("/api/v1/people/directory")).json() == {}  # now cached
    person = (await client.post("/api/v1/people", json={"global_id": 7, "name": "Ann"})).json()
    assert (await client.get("/api/v1/people/directory")).json() == {"7": {"name": "Ann", "zone_id": None}}
    await client.patch(f"/api/v1/people/{person['id']}", json={"name": "Anna"})
    assert (await client.get("/api/v1/people/directory")).json()["7"]["name"] == "Anna"
    await client.put(f"/api/v1/people/{person['id']}", json={"global_id": 8, "name": "Anna"})
    assert list((await client.get("/api/v1/people/directory")).json()) == ["8"]
    assert (await client.delete(f"/api/v1/people/{person['id']}")).status_code == 204
    assert (await client.get("/api/v1/people/directory")).json() == {}
    stats = (await client.get("/api/v1/cache/stats")).json()
    assert stats["caches"]["people.directory"]["hits"] >= 1
    assert stats["caches"]["people.directory"]["misses"] >= 5


async def test_access_log_has_request_id_and_no_secrets(server, make_key):
    key = await make_key("read")
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="INFO", format="{message} | {extra}")
    request_id = f"req-{uuid.uuid4().hex[:8]}"
    try:
        async with httpx.AsyncClient(base_url=server.url) as c:
            r = await c.get(f"/api/v1/people?api_key={key}", headers={**auth(key), "X-Request-ID": request_id})
            assert r.status_code == 200 and r.headers["x-request-id"] == request_id
            r = await c.get("/api/v1/people", headers={"X-API-Key": "vgl_0123456789ab_notarealsecret"})
            assert r.status_code == 401 and r.headers["x-request-id"]
        logger.info("echoed by a library: Authorization: Bearer {} and postgresql://u:pw@db/x", key)
        await asyncio.sleep(0.1)
    finally:
        logger.remove(sink)
    access = [line for line in lines if "GET /api/v1/people 200" in line]
    assert len(access) == 1 and request_id in access[0]
    assert any("GET /api/v1/people 401" in line for line in lines)
    secret_part = key.split("_", 2)[2]
    assert not any(secret_part in line or "notarealsecret" in line or ":pw@" in line for line in lines), lines


def test_logging_setup_never_turns_on_uvicorn_trace_middleware(base_settings):
    from uvicorn.middleware.message_logger import MessageLoggerMiddleware

    from vigil.cli import uvicorn_config

    try:
        for level in ("INFO", "DEBUG", "WARNING"):
            setup_logging(level)
            assert logging.getLogger("uvicorn.error").getEffectiveLevel() > 5
            config = uvicorn_config(base_settings.model_copy(update={"port": free_port()}))
            config.load()
            app, chain = config.loaded_app, []
            while app is not None and len(chain) < 20:
                chain.append(type(app))
                app = getattr(app, "app", None)
            assert MessageLoggerMiddleware not in chain, chain
    finally:
        setup_logging(os.environ.get("VIGIL_TEST_LOG_LEVEL", "WARNING"))


async def test_streams_of_keys_deleted_while_the_channel_was_down_close_on_reconnect(server, client, make_key):
    from sqlalchemy import delete

    from vigil.core.db import session_scope
    from vigil.core.security import ApiKey

    key = await make_key("read")
    kid = uuid.UUID((await client.get("/api/v1/auth/keys")).json()["items"][-1]["id"])
    async with websockets.connect(f"{server.ws_url}/ws/alerts", additional_headers=auth(key)) as ws:
        await asyncio.sleep(0.2)
        async with session_scope(server.ctx.sessionmaker) as session:  # deleted with no message sent
            await session.execute(delete(ApiKey).where(ApiKey.id == kid))
        await server.ctx.keys._sweep_streams()  # what a reconnect of the revocation channel runs
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd.code == 1008


def test_every_dependency_is_async(server):
    """FastAPI runs a plain `def` dependency in the thread pool: a thread hop on every request that uses it.
    Every dependency of every route is `async def` (or an async generator)."""
    import inspect

    from fastapi.routing import APIRoute, APIWebSocketRoute, _iter_routes_with_context

    def sync_calls(dependant, seen: set) -> set[str]:
        found = set()
        for sub in dependant.dependencies:
            call = sub.call
            if call is not None and id(call) not in seen:
                seen.add(id(call))
                target = call if inspect.isfunction(call) or inspect.ismethod(call) else call.__call__
                if not (inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)):
                    found.add(f"{call.__module__}.{call.__qualname__}")
            found |= sync_calls(sub, seen)
        return found

    routes = 0
    offenders: set[str] = set()
    for route, ctx in _iter_routes_with_context(server.app.routes):
        if isinstance(route, APIRoute | APIWebSocketRoute):
            routes += 1
            offenders |= sync_calls(route.dependant, set())
            if getattr(ctx, "dependant", None) is not None:
                offenders |= sync_calls(ctx.dependant, set())
    assert routes > 100
    assert not offenders, f"sync dependencies (run in the thread pool per request): {sorted(offenders)}"


def test_the_collector_is_set_for_a_server(server):
    """After start-up the app's objects are frozen out of collections and request garbage goes in rare passes
    (core/memory.py): a full collection walking every route and model stopped the loop 15-25 ms twice a second."""
    import gc

    from vigil.core.memory import THRESHOLDS

    assert gc.get_freeze_count() > 10_000
    assert gc.get_threshold() == THRESHOLDS


async def test_access_lines_bypass_loguru_and_read_as_its_own_lines(server, monkeypatch):
    """With the shipped logging (one text sink, not a terminal) the access line is written directly: it reads
    as loguru's line for the same message, keeps its request id, and is redacted. With any other sink, or
    JSON lines, it goes through loguru, so every sink still sees it."""
    import io
    import json
    import re
    import sys

    from vigil.core.logging import ACCESS_LOG

    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    try:
        setup_logging("INFO")
        assert ACCESS_LOG._direct() is stream
        async with httpx.AsyncClient(base_url=server.url) as c:
            r = await c.get("/liveness", headers={"X-Request-ID": "rid-direct"})
            r404 = await c.get("/api/v1/vgl_0123456789ab_secretpart", headers={"X-Request-ID": "rid-404"})
        assert r.status_code == 200 and r404.status_code == 404
        ACCESS_LOG.write("GET /x 200 1.0ms", "rid-same")
        with logger.contextualize(request_id="rid-same"):
            logger.patch(lambda record: record.update(name="vigil.core.middleware")).info("GET /x 200 1.0ms")
        lines = stream.getvalue().splitlines()
        stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d "
        assert any(re.fullmatch(stamp + r"INFO    vigil\.core\.middleware GET /liveness 200 \d+\.\dms "
                                r"request_id=rid-direct", line) for line in lines), lines
        refused = [line for line in lines if "rid-404" in line]
        assert refused and "secretpart" not in stream.getvalue() and "vgl_0123456789ab_***" in refused[0]
        direct, through_loguru = [line for line in lines if "rid-same" in line]
        assert re.fullmatch(stamp + ".*", direct) and direct[30:] == through_loguru[30:], (direct, through_loguru)

        seen: list[str] = []
        sink = logger.add(seen.append, level="INFO", format="{message} {extra[request_id]}")
        try:
            ACCESS_LOG.write("GET /y 200 1.0ms", "rid-sink")
        finally:
            logger.remove(sink)
        assert seen == ["GET /y 200 1.0ms rid-sink\n"] and "rid-sink" in stream.getvalue()

        setup_logging("INFO", json=True)
        assert ACCESS_LOG._direct() is None
        ACCESS_LOG.write("GET /z 200 1.0ms", "rid-json")
        record = json.loads(stream.getvalue().splitlines()[-1])["record"]
        assert record["message"] == "GET /z 200 1.0ms" and record["extra"]["request_id"] == "rid-json"
        setup_logging("WARNING")
        assert ACCESS_LOG._direct() is None
    finally:
        monkeypatch.undo()
        setup_logging(os.environ.get("VIGIL_TEST_LOG_LEVEL", "WARNING"))


async def test_a_request_the_middleware_let_through_is_not_checked_twice_and_a_refused_one_never_runs(
        server, make_key, monkeypatch):
    """AuthMiddleware checks the key and scope of `/api/v1` routes; `authorize` does not repeat that for
    the route the middleware checked (one `allows` per request). A key without the scope is still 403."""
    from vigil.core.security import Principal

    asked: list[str] = []
    allows = Principal.allows

    def counting(self, required):
        asked.append(required)
        return allows(self, required)

    write, read = await make_key("write"), await make_key("read")
    monkeypatch.setattr(Principal, "allows", counting)
    async with httpx.AsyncClient(base_url=server.url) as c:
        person = await c.post("/api/v1/people", json={"global_id": 93001, "name": "Once"}, headers=auth(write))
        assert person.status_code == 201
        assert asked == ["write"]
        asked.clear()
        assert (await c.get(f"/api/v1/people/{person.json()['id']}", headers=auth(read))).status_code == 200
        assert asked == ["read"]
        asked.clear()
        r = await c.delete(f"/api/v1/people/{person.json()['id']}", headers=auth(read))
        assert r.status_code == 403 and asked == ["write"]
        assert (await c.get(f"/api/v1/people/{person.json()['id']}", headers=auth(read))).status_code == 200
