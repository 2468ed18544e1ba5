"""Watchlist: runtime-edited plates whose sightings raise (deduplicated) plate alerts."""

import uuid

from tests.plates.helpers import event, make_camera

WL = "/api/v1/plates/watchlist"


async def alerts(client) -> list[dict]:
    return (await client.get("/api/v1/alerts", params={"source": "plate"})).json()["items"]


async def test_listed_plate_raises_one_alert_per_plate(client):
    cam = await make_camera(client, "Gate 7")
    r = await client.post(WL, json={"plate": "ab-123 c", "label": "stolen", "severity": "critical"})
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["plate_normalized"] == "AB123C" and entry["severity"] == "critical"
    await client.post("/api/v1/plates/events", json=event(cam, plate="XY999"))
    assert await alerts(client) == []
    hit = (
        await client.post("/api/v1/plates/events", json=event(cam, plate="AB 123C", event_uid="e1"))
    ).json()
    [alert] = await alerts(client)
    assert (
        alert["kind"] == "watchlist_hit" and alert["severity"] == "critical" and alert["subject"] == "AB123C"
    )
    assert alert["data"]["event_id"] == hit["id"] and alert["data"]["label"] == "stolen"
    assert alert["data"]["camera_id"] == cam and "Gate 7" in alert["title"]
    # A repeat of the same event_uid is not a new sighting; a new event bumps the same alert.
    await client.post("/api/v1/plates/events", json=event(cam, plate="AB 123C", event_uid="e1"))
    assert (await alerts(client))[0]["count"] == 1
    await client.post("/api/v1/plates/events", json=event(cam, plate="ab123c", event_uid="e2"))
    [alert] = await alerts(client)
    assert alert["count"] == 2
    # Removed from the list: no more alerts.
    assert (await client.delete(f"{WL}/{entry['id']}")).status_code == 204
    await client.post(f"/api/v1/alerts/{alert['id']}/resolve")
    await client.post("/api/v1/plates/events", json=event(cam, plate="AB123C", event_uid="e3"))
    assert [a["status"] for a in await alerts(client)] == ["resolved"]


async def test_watchlist_crud_and_errors(client):
    r = await client.post(WL, json={"plate": "AB123C"})
    assert r.status_code == 201 and r.json()["severity"] == "warning" and r.json()["label"] == ""
    entry = r.json()
    assert (await client.post(WL, json={"plate": "ab-123-c"})).status_code == 409
    for bad in (
        {"plate": "--"},
        {"plate": "X", "severity": "loud"},
        {"label": "x"},
        {"plate": "X", "foo": 1},
        {"plate": "ß" * 50},  # 50 characters, but 100 once upper-cased ("SS"): longer than a stored plate
    ):
        r = await client.post(WL, json=bad)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", bad
        assert "errors" in r.json(), r.text
    patched = await client.patch(f"{WL}/{entry['id']}", json={"severity": "info", "label": "visitor"})
    assert patched.status_code == 200 and patched.json()["severity"] == "info"
    assert (await client.patch(f"{WL}/{entry['id']}", json={"severity": None})).status_code == 422
    await client.post(WL, json={"plate": "ZZ1"})
    listed = (await client.get(WL)).json()
    assert [e["plate_normalized"] for e in listed["items"]] == ["AB123C", "ZZ1"]
    assert (await client.get(WL, params={"plate": "zz-1"})).json()["total"] == 1
    assert (await client.get(f"{WL}/{entry['id']}")).json()["label"] == "visitor"
    assert (await client.delete(f"{WL}/{uuid.uuid4()}")).status_code == 404
    assert (await client.get(f"{WL}/{uuid.uuid4()}")).status_code == 404
