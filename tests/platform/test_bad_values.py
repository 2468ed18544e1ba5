"""Values the database cannot store (NUL characters, NaN in JSON, numbers and times out of range)
are a 422 problem+json and leave nothing behind, on every domain: never a 500."""

import pytest
from sqlalchemy.exc import DBAPIError

from vigil.core.errors import bad_value_reason
from vigil.core.pagination import MAX_OFFSET

PROBLEM = "application/problem+json"


def assert_422(r, needle: str = "") -> dict:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == 422 and needle in body["detail"], body
    return body


async def make_camera(client) -> str:
    camera = {"name": "Gate", "rtsp_url": "rtsp://10.0.0.2/s", "fps": 10, "width": 64, "height": 48}
    r = await client.post("/api/v1/cameras", json=camera)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def plate_event(camera_id: str, **kw) -> dict:
    return {"camera_id": camera_id, "plate": "AB123", "confidence": 0.9,
            "captured_at": "2026-11-20T10:00:00Z"} | kw


async def test_nul_in_a_text_field_is_422_and_nothing_is_stored(client):
    assert_422(await client.post("/api/v1/auth/keys", json={"name": "a\u0000b", "scopes": ["read"]}), "NUL")
    assert (await client.get("/api/v1/auth/keys")).json()["total"] == 0
    assert_422(await client.post("/api/v1/people", json={"global_id": 1, "name": "a\u0000"}), "NUL")
    assert (await client.get("/api/v1/people")).json()["total"] == 0


@pytest.mark.parametrize("url", [
    "/api/v1/alerts?subject=a%00b",
    "/api/v1/people?q=%00",
    "/api/v1/faces/events/a%00",
    "/api/v1/faces/images?event_code=%00",
    "/api/v1/faces/events?q=a%00",
])
async def test_nul_in_a_query_or_path_value_is_422(client, url):
    assert_422(await client.get(url), "NUL")


async def test_nul_and_nan_inside_json_columns_are_422_and_nothing_is_stored(client):
    cam = await make_camera(client)
    url = "/api/v1/plates/events"
    assert_422(await client.post(url, json=plate_event(cam, tpms={"front_left": "a\u0000"})), "NUL")
    for token in ("NaN", "Infinity", "-Infinity"):
        body = f'{{"camera_id": "{cam}", "plate": "AB123", "confidence": 0.9, ' \
               f'"captured_at": "2026-11-20T10:00:00Z", "tpms": {{"front_left": {token}}}}}'
        assert_422(await client.post(url, content=body, headers={"content-type": "application/json"}), "NaN")
    assert (await client.get(url)).json()["total"] == 0
    assert (await client.post(url, json=plate_event(cam, tpms={"front_left": 2.1}))).status_code == 201


async def test_offset_beyond_the_database_bigint_is_422(client):
    for url in ("/api/v1/auth/keys", "/api/v1/alerts", "/api/v1/people", "/api/v1/scenarios"):
        body = assert_422(await client.get(url, params={"offset": MAX_OFFSET + 1}))
        assert ["query", "offset"] in [e["loc"] for e in body["errors"]]
        page = await client.get(url, params={"offset": MAX_OFFSET})
        assert page.status_code == 200 and page.json()["items"] == [], page.text


async def test_a_time_out_of_range_in_utc_is_422(client):
    # Valid for Python with its offset, but year 0 or 10000 once converted to UTC.
    for since in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"):
        body = assert_422(await client.get("/api/v1/alerts", params={"since": since}))
        assert ["query", "since"] in [e["loc"] for e in body["errors"]]


def db_error(orig: BaseException) -> DBAPIError:
    return DBAPIError("SELECT 1", {}, orig)  # type: ignore[arg-type]


def test_only_value_errors_are_mapped_to_422():
    def pg(sqlstate: str, message: str = "") -> BaseException:
        exc = Exception(message)
        exc.sqlstate = sqlstate  # type: ignore[attr-defined]
        return exc

    assert "longer" in (bad_value_reason(db_error(pg("22001"))) or "")
    assert "NUL" in (bad_value_reason(db_error(pg("22021"))) or "")
    assert "NaN" in (bad_value_reason(db_error(pg("22P02", "invalid input syntax for type json"))) or "")
    # Errors that point at our own SQL, not at the client's values, stay unexplained (500).
    assert bad_value_reason(db_error(pg("22012", "division by zero"))) is None
    assert bad_value_reason(db_error(pg("22P02", 'invalid input syntax for type uuid: "x"'))) is None
    assert bad_value_reason(db_error(pg("42P01", "relation does not exist"))) is None
    # asyncpg refuses to encode an int beyond 64 bits: OverflowError, two causes down.
    driver = Exception("invalid input for query argument $1")
    driver.__cause__ = OverflowError("value out of int64 range")
    adapted = Exception("invalid input for query argument $1")
    adapted.__cause__ = driver
    assert "number" in (bad_value_reason(db_error(adapted)) or "")


async def test_json_booleans_and_numbers_are_not_taken_for_each_other(client):
    camera = {"name": "Gate", "rtsp_url": "rtsp://10.0.0.2/s", "fps": 10, "width": 64, "height": 48}
    body = assert_422(await client.post("/api/v1/cameras", json=camera | {"enabled": 1}))
    assert body["errors"][0]["loc"] == ["body", "enabled"] and "true or false" in body["errors"][0]["msg"], body
    body = assert_422(await client.post("/api/v1/cameras", json=camera | {"fps": True}))
    assert body["errors"][0]["loc"] == ["body", "fps"] and "not true or false" in body["errors"][0]["msg"], body
    assert (await client.get("/api/v1/cameras")).json()["total"] == 0
    # The same rule on a second model and on a nullable field (each field's rule is worked out once).
    r = await client.post("/api/v1/cameras", json=camera | {"enabled": False})
    assert r.status_code == 201 and r.json()["enabled"] is False, r.text
    body = assert_422(await client.patch(f"/api/v1/cameras/{r.json()['id']}", json={"enabled": 0}))
    assert body["errors"][0]["loc"] == ["body", "enabled"], body
    assert (await client.patch(f"/api/v1/cameras/{r.json()['id']}", json={"enabled": None})).status_code == 422
