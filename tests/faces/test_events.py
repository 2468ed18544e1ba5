"""Face events: CRUD on the natural key `code`, validation, the running flag."""

from __future__ import annotations

from tests.conftest import auth

EVENTS = "/api/v1/faces/events"


async def make_event(client, code: str = "wedding-2026", **kw) -> dict:
    r = await client.post(EVENTS, json={"code": code, "name": kw.pop("name", "Ana & Ben"), **kw})
    assert r.status_code == 201, r.text
    return r.json()


async def test_create_get_update_delete(client):
    created = await make_event(client, starts_at="2026-06-01T14:00:00+02:00")
    assert created["running"] is True and created["starts_at"] == "2026-06-01T12:00:00Z"
    assert (await client.get(f"{EVENTS}/wedding-2026")).json()["id"] == created["id"]

    stopped = await client.patch(f"{EVENTS}/wedding-2026", json={"running": False})
    assert stopped.status_code == 200 and stopped.json()["running"] is False
    assert stopped.json()["name"] == "Ana & Ben" and stopped.json()["starts_at"] == "2026-06-01T12:00:00Z"

    replaced = await client.put(f"{EVENTS}/wedding-2026", json={"name": "Renamed"})
    assert replaced.json()["name"] == "Renamed" and replaced.json()["running"] is True
    assert replaced.json()["starts_at"] is None, "PUT is a full update"

    assert (await client.delete(f"{EVENTS}/wedding-2026")).status_code == 204
    assert (await client.get(f"{EVENTS}/wedding-2026")).status_code == 404
    assert (await client.delete(f"{EVENTS}/wedding-2026")).status_code == 404


async def test_duplicate_code_is_409(client):
    await make_event(client)
    again = await client.post(EVENTS, json={"code": "wedding-2026", "name": "Other"})
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"


async def test_validation(client):
    bad = [
        {"code": "has space", "name": "x"},
        {"code": "", "name": "x"},
        {"code": "ok", "name": ""},
        {"code": "ok", "name": "x", "starts_at": "2026-06-01T12:00:00"},  # naive time
        {"code": "ok", "name": "x", "starts_at": "2026-06-02T00:00:00Z", "ends_at": "2026-06-01T00:00:00Z"},
        {"code": "ok", "name": "x", "colour": "red"},
        # Valid with their offsets, but year 0 / 10000 in UTC.
        {"code": "ok", "name": "x", "starts_at": "0001-01-01T00:00:00+05:00"},
        {"code": "ok", "name": "x", "ends_at": "9999-12-31T23:59:59-05:00"},
        {"code": "ok", "name": "x", "ends_at": "9999-12-31T23:59:59.999999Z"},  # stored as infinity
        {"code": "ok", "name": "x", "starts_at": "0001-01-01T00:00:00Z"},  # stored as -infinity
    ]
    for body in bad:
        r = await client.post(EVENTS, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    await make_event(client, code="ok", starts_at="2026-06-02T00:00:00Z")
    r = await client.patch(f"{EVENTS}/ok", json={"ends_at": "2026-06-01T00:00:00Z"})
    assert r.status_code == 422, "the stored start counts when only the end is sent"
    assert (await client.patch(f"{EVENTS}/ok", json={"running": None})).status_code == 422
    assert (await client.patch(f"{EVENTS}/ok", json={"code": "new"})).status_code == 422
    assert (await client.patch(f"{EVENTS}/missing", json={"running": False})).status_code == 404


async def test_list_filters_and_pagination(client):
    await make_event(client, code="a-party", name="Garden party")
    await make_event(client, code="b-wedding", name="Wedding", running=False)
    await make_event(client, code="c-gala", name="Gala")

    async def codes(**params):
        body = (await client.get(EVENTS, params=params)).json()
        return sorted(e["code"] for e in body["items"]), body["total"]

    assert await codes() == (["a-party", "b-wedding", "c-gala"], 3)
    assert await codes(running="false") == (["b-wedding"], 1)
    assert await codes(running="true") == (["a-party", "c-gala"], 2)
    assert await codes(q="WEDD") == (["b-wedding"], 1)
    assert await codes(q="%") == ([], 0), "LIKE wildcards are matched literally"
    page = (await client.get(EVENTS, params={"limit": 2, "offset": 2})).json()
    assert len(page["items"]) == 1 and page["total"] == 3 and page["limit"] == 2


async def test_read_key_cannot_write(client, anon, make_key):
    read = await make_key("read")
    assert (await anon.get(EVENTS, headers=auth(read))).status_code == 200
    assert (await anon.post(EVENTS, json={"code": "x", "name": "x"}, headers=auth(read))).status_code == 403
    assert (await anon.get(EVENTS)).status_code == 401
