"""The Asset Tag backend's location routes, both spellings, on an asset located from observations."""

from __future__ import annotations

import uuid

from tests.assets.helpers import eventually, make_asset, make_site_with_gateways, readings_at


async def test_current_location_and_history(client):
    site, _ = await make_site_with_gateways(client)
    asset = await make_asset(client, "TAG-9", site["id"])
    r = await client.get(f"/api/v1/assets/{asset['id']}/current-location")
    assert r.status_code == 404, "not located yet"
    assert (await client.post("/api/v1/observations",
                              json={"observations": readings_at("TAG-9", (4.0, 6.0))})).status_code == 202

    async def located():
        r = await client.get(f"/api/v1/locations/{asset['id']}/current")
        return r.json() if r.status_code == 200 else None

    current = await eventually(located)
    assert current["site_id"] == site["id"] and abs(current["x"] - 4.0) < 0.5
    same = (await client.get(f"/api/v1/assets/{asset['id']}/current-location")).json()
    assert same == current
    for path in (f"/api/v1/assets/{asset['id']}/location-history", f"/api/v1/locations/{asset['id']}/history"):
        history = (await client.get(path)).json()
        assert isinstance(history, list) and len(history) == 1 and history[0]["x"] == current["x"]
    assert (await client.get(f"/api/v1/locations/{uuid.uuid4()}/history")).status_code == 404
    assert (await client.get("/api/v1/locations/not-a-uuid/current")).status_code == 422
