"""Assets CRUD: sites, gateways, assets, jobs and maintenance through the real server."""

import uuid

PROBLEM = "application/problem+json"


async def make_site(client, name="Plant A"):
    r = await client.post("/api/v1/sites", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()


async def test_sites_gateways_assets_roundtrip(server, client):
    site = await make_site(client)
    gw = await client.post("/api/v1/gateways", json={"name": "gw-1", "site_id": site["id"], "x": 1.5, "y": 2})
    assert gw.status_code == 201, gw.text
    assert gw.json()["tx_power"] == -45.0 and gw.json()["path_loss_exponent"] == 2.0
    custom = await client.post("/api/v1/gateways", json={"name": "gw-2", "site_id": site["id"], "x": 0, "y": 0,
                                                         "tx_power": -59, "path_loss_exponent": 2.7})
    assert custom.json()["tx_power"] == -59 and custom.json()["path_loss_exponent"] == 2.7
    asset = await client.post("/api/v1/assets", json={"name": "Forklift 1", "tag_id": "TAG-1", "kind": "forklift",
                                                      "site_id": site["id"]})
    assert asset.status_code == 201, asset.text
    body = asset.json()
    assert body["tag_id"] == "TAG-1" and body["battery"] is None and body["last_seen_at"] is None

    listed = (await client.get("/api/v1/gateways", params={"site_id": site["id"]})).json()
    assert listed["total"] == 2 and [g["name"] for g in listed["items"]] == ["gw-1", "gw-2"]
    assert (await client.get("/api/v1/assets", params={"kind": "forklift"})).json()["total"] == 1
    assert (await client.get("/api/v1/assets", params={"q": "lift"})).json()["total"] == 1
    assert (await client.get("/api/v1/assets", params={"q": "crane"})).json()["total"] == 0

    moved = await client.patch(f"/api/v1/gateways/{gw.json()['id']}", json={"x": 5.0})
    assert moved.json()["x"] == 5.0 and moved.json()["y"] == 2.0
    renamed = await client.put(f"/api/v1/assets/{body['id']}", json={"name": "Forklift One"})
    assert renamed.json()["name"] == "Forklift One" and renamed.json()["tag_id"] == "TAG-1"
    homeless = await client.patch(f"/api/v1/assets/{body['id']}", json={"site_id": None})
    assert homeless.json()["site_id"] is None

    # A site that still has gateways cannot go; once empty it can.
    assert (await client.delete(f"/api/v1/sites/{site['id']}")).status_code == 409
    for g in listed["items"]:
        assert (await client.delete(f"/api/v1/gateways/{g['id']}")).status_code == 204
    assert (await client.delete(f"/api/v1/sites/{site['id']}")).status_code == 204
    assert (await client.get(f"/api/v1/sites/{site['id']}")).status_code == 404
    assert (await client.delete(f"/api/v1/assets/{body['id']}")).status_code == 204
    assert (await client.get(f"/api/v1/assets/{body['id']}")).status_code == 404


async def test_bad_input_is_a_clear_4xx_and_writes_nothing(server, client):
    site = await make_site(client)
    await client.post("/api/v1/assets", json={"name": "a", "tag_id": "DUP"})
    cases = [
        ("/api/v1/sites", {"name": "Plant A"}, 409),
        ("/api/v1/assets", {"name": "b", "tag_id": "DUP"}, 409),
        ("/api/v1/assets", {"name": "b", "tag_id": "T2", "site_id": str(uuid.uuid4())}, 422),
        ("/api/v1/assets", {"name": "b", "tag_id": "T2", "colour": "red"}, 422),
        ("/api/v1/assets", {"name": "b", "tag_id": "has space"}, 422),
        ("/api/v1/gateways", {"name": "g", "site_id": str(uuid.uuid4()), "x": 0, "y": 0}, 422),
        ("/api/v1/gateways", {"name": "g", "site_id": site["id"], "x": "left", "y": 0}, 422),
        ("/api/v1/gateways", {"name": "g", "site_id": site["id"], "x": 0, "y": 0, "path_loss_exponent": 0}, 422),
    ]
    for path, payload, status in cases:
        r = await client.post(path, json=payload)
        assert r.status_code == status, (path, payload, r.text)
        assert r.headers["content-type"] == PROBLEM
    assert (await client.get("/api/v1/assets")).json()["total"] == 1
    assert (await client.get("/api/v1/gateways")).json()["total"] == 0
    other = (await client.post("/api/v1/assets", json={"name": "c", "tag_id": "OTHER"})).json()
    clash = await client.patch(f"/api/v1/assets/{other['id']}", json={"tag_id": "DUP"})
    assert clash.status_code == 409
    for path in ("sites", "gateways", "assets", "jobs", "maintenance"):
        assert (await client.get(f"/api/v1/{path}/{uuid.uuid4()}")).status_code == 404
        assert (await client.delete(f"/api/v1/{path}/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/api/v1/assets", params={"limit": 501})).status_code == 422


async def test_job_status_machine(server, client):
    a = (await client.post("/api/v1/assets", json={"name": "a", "tag_id": "J1"})).json()
    b = (await client.post("/api/v1/assets", json={"name": "b", "tag_id": "J2"})).json()
    job = await client.post("/api/v1/jobs", json={"title": "Inspect", "asset_ids": [a["id"], b["id"]]})
    assert job.status_code == 201, job.text
    job = job.json()
    assert job["status"] == "open" and sorted(job["asset_ids"]) == sorted([a["id"], b["id"]])
    unknown = await client.post("/api/v1/jobs", json={"title": "x", "asset_ids": [str(uuid.uuid4())]})
    assert unknown.status_code == 422
    url = f"/api/v1/jobs/{job['id']}"
    started = (await client.patch(url, json={"status": "in_progress", "asset_ids": [a["id"]]})).json()
    assert started["status"] == "in_progress" and started["started_at"] and started["asset_ids"] == [a["id"]]
    assert (await client.get("/api/v1/jobs", params={"asset_id": b["id"]})).json()["total"] == 0
    assert (await client.get("/api/v1/jobs", params={"asset_id": a["id"]})).json()["total"] == 1
    done = (await client.patch(url, json={"status": "done"})).json()
    assert done["status"] == "done" and done["completed_at"]
    for change in ({"status": "open"}, {"status": "in_progress"}, {"title": "again"}):
        r = await client.patch(url, json=change)
        assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    assert (await client.patch(url, json={"status": "finished"})).status_code == 422
    assert (await client.get("/api/v1/jobs", params={"status": "done"})).json()["total"] == 1


async def test_maintenance_records(server, client):
    a = (await client.post("/api/v1/assets", json={"name": "a", "tag_id": "M1"})).json()
    r = await client.post("/api/v1/maintenance", json={"asset_id": a["id"], "kind": "service",
                                                       "due_at": "2020-01-01T00:00:00Z"})
    assert r.status_code == 201, r.text
    future = await client.post("/api/v1/maintenance", json={"asset_id": a["id"], "kind": "calibration",
                                                            "due_at": "2999-01-01T00:00:00Z"})
    assert future.status_code == 201
    overdue = (await client.get("/api/v1/maintenance", params={"overdue": "true"})).json()
    assert [m["kind"] for m in overdue["items"]] == ["service"]
    assert (await client.post("/api/v1/maintenance", json={"asset_id": str(uuid.uuid4()), "kind": "x",
                                                           "due_at": "2020-01-01T00:00:00Z"})).status_code == 422
    assert (await client.post("/api/v1/maintenance", json={"asset_id": a["id"], "kind": "x",
                                                           "due_at": "2020-01-01T00:00:00"})).status_code == 422
    done = await client.patch(f"/api/v1/maintenance/{r.json()['id']}", json={"done_at": "2020-01-02T00:00:00Z"})
    assert done.json()["done_at"].startswith("2020-01-02")
    assert (await client.get("/api/v1/maintenance", params={"overdue": "true"})).json()["total"] == 0
    assert (await client.get("/api/v1/maintenance", params={"done": "false"})).json()["total"] == 1
