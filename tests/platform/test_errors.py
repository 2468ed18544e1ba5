"""Every error is RFC 9457 problem+json with the right status; bad input never gives a 500."""

import pytest

PROBLEM = "application/problem+json"


def assert_problem(r, status):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    return body


async def test_malformed_json_is_400(client):
    r = await client.post("/api/v1/auth/keys", content=b'{"name": "x", ', headers={"content-type": "application/json"})
    assert_problem(r, 400)


async def test_wrong_types_are_422_with_errors(client):
    body = assert_problem(await client.post("/api/v1/auth/keys", json={"name": 5, "scopes": "read"}), 422)
    locs = {tuple(e["loc"]) for e in body["errors"]}
    assert ("body", "scopes") in locs


async def test_unknown_route_and_method(client, anon):
    assert_problem(await anon.get("/nope"), 404)
    assert_problem(await client.get("/api/v1/nope"), 404)
    assert_problem(await client.put("/health"), 405)


async def test_bad_path_param_is_422(client):
    assert_problem(await client.delete("/api/v1/auth/keys/not-a-uuid"), 422)


async def test_missing_and_wrong_key(anon):
    body = assert_problem(await anon.get("/api/v1/cache/stats"), 401)
    assert "key" in body["detail"].lower()
    assert_problem(await anon.get("/api/v1/cache/stats", headers={"Authorization": "Basic abc"}), 401)


async def test_missing_scope_is_403(anon, make_key):
    key = await make_key("read")
    assert_problem(await anon.post("/api/v1/cache/invalidate/x", headers={"X-API-Key": key}), 403)


async def test_body_too_large_is_413(client, server):
    limit = server.ctx.settings.max_request_bytes
    r = await client.post("/api/v1/auth/keys", content=b"x" * (limit + 1), headers={"content-type": "application/json"})
    assert_problem(r, 413)
    assert (await client.get("/api/v1/auth/keys")).json()["total"] == 0


@pytest.mark.parametrize(
    "payload", [b"null", b"[]", b'"x"', b"1e400", b"\xff\xfe", b'{"name": "\\ud800", "scopes": ["read"]}'])
async def test_odd_bodies_never_500(client, payload):
    r = await client.post("/api/v1/auth/keys", content=payload, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, (payload, r.status_code, r.text)
    assert r.headers["content-type"] == PROBLEM
