"""An event must never outgrow the broker: free-form fields are bounded where they enter (422 naming
the field), so a 1.2 MB `tpms` is refused instead of stored and then jamming the outbox relay."""

import pytest

from tests.plates.helpers import event, make_camera
from vigil.core.limits import MAX_JSON_FIELD_BYTES

pytestmark = pytest.mark.fault


async def test_oversized_tpms_and_vehicle_are_refused_naming_the_field(client):
    cam = await make_camera(client)
    huge = {"readings": [{"tyre": i, "kpa": 230.5, "note": "x" * 100} for i in range(10_000)]}  # ~1.2 MB
    r = await client.post("/api/v1/plates/events", json=event(cam, tpms=huge))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    [err] = r.json()["errors"]
    assert err["loc"] == ["body", "tpms"] and err["type"] == "json_too_large"
    assert str(MAX_JSON_FIELD_BYTES) in err["msg"]

    r = await client.post("/api/v1/plates/events", json=event(cam, vehicle={"color": "red", "extra": "y" * 20_000}))
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["errors"]] == [["body", "vehicle"]]
    # Nothing half-written: no event was stored.
    assert (await client.get("/api/v1/plates/events")).json()["items"] == []

    # Just under the bound is fine, and it is stored whole.
    ok = {"fl": "z" * (MAX_JSON_FIELD_BYTES - 100)}
    r = await client.post("/api/v1/plates/events", json=event(cam, tpms=ok))
    assert r.status_code == 201, r.text
    assert r.json()["tpms"] == ok


def _tpms_schemas(node):
    """Every `tpms` property schema anywhere in the document (the ingest body is inlined per media type)."""
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict) and "tpms" in props:
            yield props["tpms"]
        for value in node.values():
            yield from _tpms_schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _tpms_schemas(value)


async def test_the_bound_is_in_the_openapi_document(client):
    spec = (await client.get("/openapi.json")).json()
    found = list(_tpms_schemas(spec["paths"]["/api/v1/plates/events"]["post"])) or list(_tpms_schemas(spec))
    assert found
    for tpms in found:
        assert str(MAX_JSON_FIELD_BYTES) in tpms["description"]
        assert tpms["anyOf"][0]["x-max-json-bytes"] == MAX_JSON_FIELD_BYTES
