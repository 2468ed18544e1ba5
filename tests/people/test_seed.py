"""`vigil seed`: loads the demo cameras, zones, people and alerts through the real command; running it again
adds nothing."""

import asyncio
import os
import sys
from pathlib import Path

from vigil.seed import ALERTS, CAMERAS, PEOPLE, ZONES, seed


async def run_cli(settings, tmp_path: Path) -> str:
    env = os.environ | {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
                        "VIGIL_DATA_DIR": str(tmp_path), "VIGIL_LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vigil.cli", "seed", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_seed_command_is_idempotent(server, client, tmp_path):
    # A warm directory cache must not hide the seeded people.
    assert (await client.get("/api/v1/people/directory")).json() == {}
    out = await run_cli(server.ctx.settings, tmp_path)
    counts = f"{len(CAMERAS)} cameras, {len(ZONES)} zones, {len(PEOPLE)} people, {len(ALERTS)} alerts added"
    assert counts in out

    directory = (await client.get("/api/v1/people/directory")).json()
    assert len(directory) == len(PEOPLE) and directory["1001"] == {"name": "Amira Haddad", "zone_id": "ZONE_001"}
    zones = (await client.get("/api/v1/zones")).json()
    assert zones["total"] == len(ZONES)
    corners_zone = (await client.get("/api/v1/zones/ZONE_002")).json()
    assert corners_zone["geometry"]["coordinates"][0][0] == corners_zone["geometry"]["coordinates"][0][-1]
    # Zones and cameras point at each other.
    cameras = {c["name"]: c for c in (await client.get("/api/v1/cameras")).json()["items"]}
    assert len(cameras) == len(CAMERAS) and cameras["cam-hall-01"]["zone_ids"] == ["ZONE_001", "ZONE_002"]
    assert corners_zone["camera_id"] == cameras["cam-hall-01"]["id"]
    assert all(z["camera_id"] in {c["id"] for c in cameras.values()} for z in zones["items"])
    alerts = (await client.get("/api/v1/alerts", params={"source": "reid"})).json()
    assert alerts["total"] == len(ALERTS) and all(a["count"] == 1 for a in alerts["items"])

    # Edited data survives a second run, and nothing is added or counted twice.
    await client.patch("/api/v1/zones/ZONE_001", json={"name": "Line A (renamed)"})
    assert "0 cameras, 0 zones, 0 people, 0 alerts added" in await run_cli(server.ctx.settings, tmp_path)
    assert (await client.get("/api/v1/zones/ZONE_001")).json()["name"] == "Line A (renamed)"
    again = (await client.get("/api/v1/alerts", params={"source": "reid"})).json()
    assert again["total"] == len(ALERTS) and all(a["count"] == 1 for a in again["items"])


async def test_seed_function_adds_only_what_is_missing(server, client):
    await client.post("/api/v1/people", json={"global_id": 1001, "name": "Already here"})
    added = await seed(server.ctx.sessionmaker, server.ctx.cache)
    assert added == {"cameras": len(CAMERAS), "zones": len(ZONES), "people": len(PEOPLE) - 1,
                     "alerts": len(ALERTS)}
    r = await client.get("/api/v1/people", params={"q": "already"})
    assert r.json()["items"][0]["global_id"] == 1001
