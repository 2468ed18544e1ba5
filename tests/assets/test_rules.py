"""Rules as rows: low battery with hysteresis, missing tags, maintenance overdue raised once."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.assets.helpers import eventually, make_asset, make_site_with_gateways, readings_at
from vigil.assets.rules import checks as rules
from vigil.core.db import session_scope


def test_low_battery_hysteresis():
    holds = lambda b, active: rules.low_battery_holds(b, active=active, threshold=20, hysteresis=5)  # noqa: E731
    assert holds(19.9, False) and not holds(20, False)
    assert holds(22, True), "above the threshold but inside the hysteresis band: still low"
    assert not holds(25, True)
    assert holds(None, True) and not holds(None, False), "no reading changes nothing"


async def check(server, *, wait: bool = True):
    """One full pass. The app's own periodic pass may hold the check lock right now, and then a pass that
    only tries the lock is skipped (while the app's pass may have read the assets before the test's last
    report): so by default wait for the lock first. It is the same session's, so check_rules' try-lock then
    succeeds. `wait=False` is the pass as the app runs it."""
    async with session_scope(server.ctx.sessionmaker) as session:
        if wait:
            await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": rules.CHECK_LOCK})
        return await rules.check_rules(session, now=datetime.now(UTC))


async def alerts_of(client, kind, **params):
    return (await client.get("/api/v1/alerts", params={"source": "asset", "kind": kind, **params})).json()["items"]


async def report_battery(client, tag, level):
    batch = readings_at(tag, (5.0, 5.0), count=1, battery=level)
    r = await client.post("/api/v1/observations", json={"observations": batch})
    assert r.json()["stored"] == 4, r.text


async def test_low_battery_raises_once_and_resolves_above_hysteresis(server, client):
    site, _ = await make_site_with_gateways(client)
    asset = await make_asset(client, "BAT-1", site["id"])
    calm = await make_asset(client, "BAT-2", site["id"])
    r = await client.post("/api/v1/asset-rules", json={"name": "battery", "kind": "low_battery",
                                                       "params": {"threshold": 20}, "severity": "critical"})
    assert r.status_code == 201 and r.json()["params"] == {"threshold": 20.0, "hysteresis": 5.0}
    await report_battery(client, "BAT-1", 15)
    await report_battery(client, "BAT-2", 80)
    await check(server)
    await check(server)
    [alert] = await alerts_of(client, "low_battery")
    assert alert["severity"] == "critical" and alert["count"] == 1 and alert["status"] == "open"
    assert alert["data"]["asset_id"] == asset["id"] and alert["data"]["battery"] == 15
    await report_battery(client, "BAT-1", 22)
    await check(server)
    assert (await alerts_of(client, "low_battery"))[0]["status"] == "open", "22 < 20 + 5: not yet"
    await report_battery(client, "BAT-1", 26)
    await check(server)
    [resolved] = await alerts_of(client, "low_battery")
    assert resolved["status"] == "resolved" and resolved["id"] == alert["id"]
    assert not [a for a in await alerts_of(client, "low_battery") if a["data"]["asset_id"] == calm["id"]]


async def test_most_specific_rule_wins(server, client):
    site, _ = await make_site_with_gateways(client)
    quiet = await make_asset(client, "SPEC-1", site["id"])
    loud = await make_asset(client, "SPEC-2", site["id"])
    await client.post("/api/v1/asset-rules", json={"name": "all", "kind": "low_battery", "params": {"threshold": 30}})
    site_rule = await client.post("/api/v1/asset-rules", json={"name": "site off", "kind": "low_battery",
                                                               "site_id": site["id"], "enabled": False})
    assert site_rule.status_code == 201
    await client.post("/api/v1/asset-rules", json={"name": "loud", "kind": "low_battery", "asset_id": loud["id"],
                                                   "params": {"threshold": 50}, "severity": "info"})
    await report_battery(client, "SPEC-1", 10)
    await report_battery(client, "SPEC-2", 40)
    await check(server)
    raised = await alerts_of(client, "low_battery")
    assert [(a["data"]["asset_id"], a["severity"]) for a in raised] == [(loud["id"], "info")]
    assert quiet["id"] not in {a["data"]["asset_id"] for a in raised}, "the site rule switched it off"


async def test_missing_tag_after_n_minutes(server, client):
    site, _ = await make_site_with_gateways(client)
    asset = await make_asset(client, "MISS-1", site["id"])
    await client.post("/api/v1/asset-rules", json={"name": "missing", "kind": "missing", "asset_id": asset["id"],
                                                   "params": {"minutes": 0.02}})  # 1.2 s
    assert await eventually(lambda: alerts_of(client, "missing", status="open"))
    # Heard again: the next estimate moves last_seen_at and the check resolves the alert.
    r = await client.post("/api/v1/observations", json={"observations": readings_at("MISS-1", (5.0, 5.0), count=1,
                                                                                   start=datetime.now(UTC))})
    assert r.json()["stored"] == 4

    async def resolved():
        items = await alerts_of(client, "missing")
        return items and items[0]["status"] == "resolved"

    await eventually(resolved)


async def test_maintenance_overdue_raises_once_and_done_resolves(server, client):
    site, _ = await make_site_with_gateways(client)
    asset = await make_asset(client, "MNT-1", site["id"])
    other = await make_asset(client, "MNT-2", site["id"])
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    record = (await client.post("/api/v1/maintenance", json={"asset_id": asset["id"], "kind": "service",
                                                             "due_at": past})).json()
    await client.post("/api/v1/maintenance", json={"asset_id": other["id"], "kind": "service", "due_at": past})
    await client.post("/api/v1/asset-rules", json={"name": "no nagging", "kind": "maintenance_overdue",
                                                   "asset_id": other["id"], "enabled": False})
    for _ in range(3):
        await check(server)
    [alert] = await alerts_of(client, "maintenance_overdue")
    assert alert["count"] == 1 and alert["severity"] == "warning" and alert["data"]["maintenance_id"] == record["id"]
    got = (await client.get(f"/api/v1/maintenance/{record['id']}")).json()
    assert got["overdue_alerted_at"]
    done = await client.patch(f"/api/v1/maintenance/{record['id']}", json={"done_at": datetime.now(UTC).isoformat()})
    assert done.status_code == 200 and done.json()["overdue_alerted_at"] is None
    [after] = await alerts_of(client, "maintenance_overdue")
    assert after["status"] == "resolved"
    await check(server)
    assert len(await alerts_of(client, "maintenance_overdue")) == 1, "done records raise nothing more"


@pytest.mark.parametrize("payload", [
    {"kind": "low_battery", "params": {"threshold": 150}},
    {"kind": "low_battery", "params": {"volts": 3}},
    {"kind": "missing", "params": {"minutes": 0}},
    {"kind": "overheating"},
    {"kind": "missing", "asset_id": str(uuid.uuid4())},
    {"kind": "missing", "site_id": str(uuid.uuid4())},
])
async def test_bad_rules_are_422(server, client, payload):
    r = await client.post("/api/v1/asset-rules", json={"name": "r", **payload})
    assert r.status_code == 422, r.text
    assert (await client.get("/api/v1/asset-rules")).json()["total"] == 0


async def test_rule_crud(server, client):
    site, _ = await make_site_with_gateways(client)
    asset = await make_asset(client, "CRUD-1", site["id"])
    both = await client.post("/api/v1/asset-rules", json={"name": "r", "kind": "missing", "site_id": site["id"],
                                                          "asset_id": asset["id"]})
    assert both.status_code == 422
    rule = (await client.post("/api/v1/asset-rules", json={"name": "r", "kind": "missing"})).json()
    assert rule["params"] == {"minutes": 10.0} and rule["site_id"] is None and rule["asset_id"] is None
    url = f"/api/v1/asset-rules/{rule['id']}"
    updated = (await client.patch(url, json={"params": {"minutes": 3}, "severity": "critical"})).json()
    assert updated["params"] == {"minutes": 3.0} and updated["severity"] == "critical"
    assert (await client.patch(url, json={"params": {"minutes": -1}})).status_code == 422
    assert (await client.get("/api/v1/asset-rules", params={"kind": "missing"})).json()["total"] == 1
    assert (await client.delete(url)).status_code == 204
    assert (await client.get(url)).status_code == 404


async def test_a_check_already_running_elsewhere_is_skipped_not_waited_for(server, client):
    site, _ = await make_site_with_gateways(client)
    asset = await make_asset(client, "BUSY-1", site["id"])
    await client.post("/api/v1/asset-rules", json={"name": "battery", "kind": "low_battery",
                                                   "params": {"threshold": 20}, "asset_id": asset["id"]})
    await report_battery(client, "BUSY-1", 5)
    async with session_scope(server.ctx.sessionmaker) as other:  # another instance, mid-check
        await other.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": rules.CHECK_LOCK})
        skipped = await asyncio.wait_for(check(server, wait=False), 5)
        assert (skipped.raised, skipped.resolved) == (0, 0)
    await check(server)  # (the server's own loop may have got there first: either way, one alert)
    assert len(await alerts_of(client, "low_battery", subject=f"asset:{asset['id']}")) == 1
