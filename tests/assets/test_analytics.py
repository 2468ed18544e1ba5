"""Analytics: dwell per geofence from enter/exit history, time seen and moving from location history."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.assets.helpers import make_asset, make_site_with_gateways
from vigil.assets.geofences.models import GeofenceEvent
from vigil.assets.tracking import analytics
from vigil.assets.tracking.models import LocationEstimate
from vigil.core.db import session_scope

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def at(minutes):
    return T0 + timedelta(minutes=minutes)


def test_dwell_counts_visits_and_clips_to_the_range():
    events = [("dock", "enter", at(10)), ("dock", "exit", at(20)), ("dock", "enter", at(50)),
              ("yard", "exit", at(5)), ("bay", "enter", at(-30)), ("bay", "exit", at(-20))]
    out = analytics.dwell(events, inside_at_start=["yard"], since=at(0), until=at(60))
    assert out["dock"] == (20 * 60.0, 2)  # 10 min, then 10 min still inside at the end
    assert out["yard"] == (5 * 60.0, 1)  # inside when the range began
    assert "bay" not in out
    assert analytics.dwell([], inside_at_start=[], since=at(0), until=at(1)) == {}


def test_utilisation_seen_and_moving():
    pts = [(at(0), 0.0, 0.0), (at(0.5), 0.1, 0.0), (at(1), 5.0, 0.0), (at(10), 5.0, 0.0)]
    seen, moving = analytics.utilisation(pts, since=at(0), until=at(20), gap_s=60, moving_m=1.0)
    # 0-1 min continuous, 1-2 min vouched by the estimate at 1, 10-11 by the last one.
    assert seen == pytest.approx(3 * 60)
    assert moving == pytest.approx(30), "only the 0.5 -> 1 min step moved more than 1 m"
    seen, _ = analytics.utilisation(pts, since=at(0.75), until=at(1.5), gap_s=60, moving_m=1.0)
    assert seen == pytest.approx(45)


async def test_dwell_and_utilisation_endpoints(server, client):
    site, _ = await make_site_with_gateways(client)
    asset = await make_asset(client, "ANA-1", site["id"])
    fence = (await client.post("/api/v1/geofences", json={"name": "Dock", "site_id": site["id"], "kind": "circle",
                                                          "center": [5, 5], "radius_m": 3})).json()
    now = datetime.now(UTC).replace(microsecond=0)
    asset_id, fence_id = uuid.UUID(asset["id"]), uuid.UUID(fence["id"])
    async with session_scope(server.ctx.sessionmaker) as session:
        for kind, minutes_ago in (("enter", 50), ("exit", 30), ("enter", 10)):
            session.add(GeofenceEvent(asset_id=asset_id, geofence_id=fence_id, kind=kind, x=5, y=5,
                                      at=now - timedelta(minutes=minutes_ago)))
        for i, x in enumerate([0.0, 0.0, 4.0, 8.0]):
            session.add(LocationEstimate(asset_id=asset_id, site_id=uuid.UUID(site["id"]), x=x, y=0, method="single",
                                         accuracy_m=1, gateways=1, estimated_at=now - timedelta(minutes=4 - i)))
    since = (now - timedelta(hours=1)).isoformat()
    until = now.isoformat()
    r = await client.get(f"/api/v1/analytics/assets/{asset['id']}/dwell", params={"since": since, "until": until})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["geofences"] == [{"geofence_id": fence["id"], "name": "Dock", "seconds": 30 * 60.0, "visits": 2}]
    # Starting inside a visit: the earlier enter is remembered.
    late = await client.get(f"/api/v1/analytics/assets/{asset['id']}/dwell",
                            params={"since": (now - timedelta(minutes=40)).isoformat(), "until": until})
    assert late.json()["geofences"][0]["seconds"] == 20 * 60.0
    u = (await client.get(f"/api/v1/analytics/assets/{asset['id']}/utilisation",
                          params={"since": (now - timedelta(minutes=10)).isoformat(), "until": until})).json()
    assert u["range_s"] == 600 and u["seen_s"] == 4 * 60 and u["moving_s"] == 2 * 60
    assert u["seen_share"] == pytest.approx(0.4) and u["moving_share"] == pytest.approx(0.2)
    bad = [{"since": until, "until": since}, {"since": "2026-01-01T00:00:00"}, {"since": "yesterday"}]
    for params in bad:
        r = await client.get(f"/api/v1/analytics/assets/{asset['id']}/dwell", params=params)
        assert r.status_code == 422, (params, r.text)
    assert (await client.get(f"/api/v1/analytics/assets/{uuid.uuid4()}/dwell")).status_code == 404
    assert (await client.get(f"/api/v1/analytics/assets/{asset['id']}/utilisation",
                             params={"gap_s": 0})).status_code == 422
