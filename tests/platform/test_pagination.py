"""The shared pagination contract: {items,total,limit,offset}, default 50, max 500, over -> 422."""

import pytest


async def test_limits_and_offsets(client):
    for i in range(7):
        assert (await client.post("/api/v1/auth/keys", json={"name": f"k{i}", "scopes": ["read"]})).status_code == 201
    page = (await client.get("/api/v1/auth/keys")).json()
    assert page["limit"] == 50 and page["offset"] == 0 and page["total"] == 7 and len(page["items"]) == 7
    page = (await client.get("/api/v1/auth/keys", params={"limit": 3, "offset": 5})).json()
    assert page["total"] == 7 and [k["name"] for k in page["items"]] == ["k5", "k6"]
    assert (await client.get("/api/v1/auth/keys", params={"limit": 500})).status_code == 200
    for bad in ({"limit": 501}, {"limit": 0}, {"offset": -1}, {"limit": "many"}):
        r = await client.get("/api/v1/auth/keys", params=bad)
        assert r.status_code == 422, bad
        assert r.headers["content-type"] == "application/problem+json"


def test_read_columns_refuses_a_schema_field_that_is_no_column():
    """A page read as dicts must not lose a field the entity would have supplied as a property."""
    import pydantic

    from vigil.alerts.models import Alert
    from vigil.alerts.schemas import AlertRead
    from vigil.core.pagination import read_columns

    assert [c.name for c in read_columns(Alert, AlertRead)] == list(AlertRead.model_fields)

    class WithExtra(AlertRead):
        is_open: bool = pydantic.Field(default=False)

    with pytest.raises(TypeError, match="is_open"):
        read_columns(Alert, WithExtra)
