"""Shared set-up for the assets tests: a 20 x 20 m site with a gateway in each corner."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

import numpy as np

from vigil.assets.tracking.locate import distance_to_rssi

CORNERS = {"gw-sw": (0.0, 0.0), "gw-se": (20.0, 0.0), "gw-nw": (0.0, 20.0), "gw-ne": (20.0, 20.0)}


async def make_site_with_gateways(client, name="Yard"):
    site = (await client.post("/api/v1/sites", json={"name": name})).json()
    gateways = {}
    for gw_name, (x, y) in CORNERS.items():
        r = await client.post("/api/v1/gateways", json={"name": gw_name, "site_id": site["id"], "x": x, "y": y})
        assert r.status_code == 201, r.text
        gateways[gw_name] = r.json()
    return site, gateways


async def make_asset(client, tag_id="TAG-1", site_id=None):
    r = await client.post("/api/v1/assets", json={"name": f"asset {tag_id}", "tag_id": tag_id, "site_id": site_id})
    assert r.status_code == 201, r.text
    return r.json()


def readings_at(tag_id, point, *, count=5, sigma=0.0, rng=None, start=None, step_s=0.2, battery=None):
    """`count` readings per corner gateway of a tag at `point`, with Gaussian dB noise."""
    rng = rng or np.random.default_rng(0)
    start = start or datetime.now(UTC) - timedelta(seconds=count * step_s)
    out = []
    for i in range(count):
        for gw_name, pos in CORNERS.items():
            rssi = float(distance_to_rssi(math.dist(point, pos))) + (rng.normal(0, sigma) if sigma else 0.0)
            reading = {"gateway_id": gw_name, "tag_id": tag_id, "rssi": round(max(min(rssi, 0.0), -120.0), 2),
                       "observed_at": (start + timedelta(seconds=i * step_s)).isoformat()}
            if battery is not None:
                reading["battery"] = battery
            out.append(reading)
    return out


async def eventually(probe, timeout=15.0, interval=0.1):
    """Poll an async probe until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
