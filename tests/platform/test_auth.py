"""Auth: hashed keys, scopes, deny by default, the admin env key, WebSocket credentials."""

import hashlib

import httpx
import pytest
import websockets
from sqlalchemy import text

from tests.conftest import ADMIN_KEY, auth

PROBLEM = "application/problem+json"


async def test_key_is_shown_once_and_stored_hashed(client, server):
    r = await client.post("/api/v1/auth/keys", json={"name": "edge-1", "scopes": ["ingest", "read", "read"]})
    assert r.status_code == 201
    body = r.json()
    assert body["scopes"] == ["read", "ingest"]
    key = body["key"]
    listed = (await client.get("/api/v1/auth/keys")).json()
    assert listed["total"] == 1 and "key" not in listed["items"][0]
    async with server.ctx.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT key_hash FROM api_keys"))).scalar_one()
    assert stored == hashlib.sha256(key.encode()).hexdigest()
    assert key not in stored


# One route per method and the scope each key needs: GET reads, POST/DELETE write, keys need admin.
MATRIX = [
    # (method, path, body, {scope: allowed})
    ("GET", "/api/v1/cache/stats", None, {"read": True, "write": True, "ingest": False, "admin": True}),
    ("POST", "/api/v1/cache/invalidate/people", None, {"read": False, "write": True, "ingest": False, "admin": True}),
    ("GET", "/api/v1/auth/keys", None, {"read": False, "write": False, "ingest": False, "admin": True}),
    ("POST", "/api/v1/auth/keys", {"name": "x", "scopes": ["read"]},
     {"read": False, "write": False, "ingest": False, "admin": True}),
    # Past authorization these answer 404 (no such alert): what matters here is not 401/403.
    ("PUT", "/api/v1/alerts/00000000-0000-0000-0000-000000000000/acknowledge", None,
     {"read": False, "write": True, "ingest": False, "admin": True}),
    ("DELETE", "/api/v1/auth/keys/00000000-0000-0000-0000-000000000000", None,
     {"read": False, "write": False, "ingest": False, "admin": True}),
]


@pytest.mark.parametrize(("method", "path", "body", "allowed"), MATRIX)
async def test_scope_matrix(client, anon, make_key, method, path, body, allowed):
    no_key = await anon.request(method, path, json=body)
    assert no_key.status_code == 401 and no_key.headers["content-type"] == PROBLEM
    bad_key = await anon.request(method, path, json=body, headers=auth("vgl_000000000000_nope"))
    assert bad_key.status_code == 401
    for scope, ok in allowed.items():
        key = await make_key(scope)
        r = await anon.request(method, path, json=body, headers=auth(key))
        if ok:
            assert r.status_code not in (401, 403), (scope, r.status_code, r.text)
            assert r.status_code < 500
        else:
            assert r.status_code == 403, (scope, r.status_code, r.text)
            assert r.headers["content-type"] == PROBLEM


async def test_delete_key_revokes_at_once_via_x_api_key(client, anon, make_key):
    key = await make_key("read")
    assert (await anon.get("/api/v1/cache/stats", headers={"X-API-Key": key})).status_code == 200
    key_id = (await client.get("/api/v1/auth/keys")).json()["items"][0]["id"]
    assert (await client.delete(f"/api/v1/auth/keys/{key_id}")).status_code == 204
    assert (await anon.get("/api/v1/cache/stats", headers={"X-API-Key": key})).status_code == 401
    again = await client.delete(f"/api/v1/auth/keys/{key_id}")
    assert again.status_code == 404 and again.headers["content-type"] == PROBLEM


async def test_create_key_validation(client):
    for bad in ({"name": "x", "scopes": []}, {"name": "x", "scopes": ["root"]}, {"name": "", "scopes": ["read"]},
                {"name": "x", "scopes": ["read"], "extra": 1}):
        r = await client.post("/api/v1/auth/keys", json=bad)
        assert r.status_code == 422, bad
        assert r.json()["errors"]
    assert (await client.get("/api/v1/auth/keys")).json()["total"] == 0


async def test_public_routes_need_no_key(anon):
    for path in ("/health", "/ready", "/liveness", "/metrics", "/openapi.json", "/docs", "/redoc"):
        assert (await anon.get(path)).status_code == 200, path


async def test_websocket_needs_a_key(server, make_key):
    url = f"{server.ws_url}/ws/events"
    with pytest.raises(websockets.InvalidStatus) as denied:
        async with websockets.connect(url):
            pass
    assert denied.value.response.status_code == 403
    ingest = await make_key("ingest")
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(f"{url}?token={ingest}"):
            pass
    read = await make_key("read")
    async with websockets.connect(f"{url}?token={read}") as ws:
        await ws.ping()
    async with websockets.connect(url, additional_headers=auth(ADMIN_KEY)) as ws:
        await ws.ping()


async def test_token_never_logged(server, make_key):
    from loguru import logger

    read = await make_key("read")
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG")
    try:
        async with websockets.connect(f"{server.ws_url}/ws/events?token={read}") as ws:
            await ws.ping()
        async with httpx.AsyncClient(base_url=server.url) as c:
            await c.get("/api/v1/cache/stats", headers=auth(read))
    finally:
        logger.remove(sink)
    assert lines, "expected request/connection log lines"
    assert not [line for line in lines if read in line]
