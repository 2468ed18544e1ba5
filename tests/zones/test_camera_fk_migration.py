"""Migration 0008 on a scratch database: legacy string `zones.camera_id` values become camera UUIDs or NULL,
the foreign key then holds (ON DELETE SET NULL), and downgrade gives the string column back."""

import asyncio
import json
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from vigil.core import migrations
from vigil.core.devstack import ensure_database

SQUARE = json.dumps({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]})
HALL = uuid.UUID("6f1c1a52-1c1e-4d0f-9a53-3f1f0c2b7d10")
DOCK = uuid.UUID("0b7e4a9e-2c55-4a8e-8f0d-5a1d2e3c4b5a")
LEGACY = {  # zone_id -> the camera_id string written before 0008
    "Z_CANONICAL": str(HALL),
    "Z_OTHER_SPELLING": " {" + DOCK.hex.upper() + "} ",  # braces, upper case, no hyphens, blanks around
    "Z_NO_SUCH_CAMERA": str(uuid.uuid4()),
    "Z_NOT_A_UUID": "cam-hall-01",
    "Z_ALMOST": str(HALL)[:-1],
    "Z_NONE": None,
}


@pytest.fixture(scope="module")
def scratch_url(stack):
    if "postgres" not in stack.processes:
        pytest.skip("needs the embedded PostgreSQL to create a scratch database")
    port = stack.processes["postgres"].port
    ensure_database(port, "vigil_zone_camera_fk", drop_first=True)
    return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/vigil_zone_camera_fk"


async def camera_ids(conn) -> dict[str, object]:
    rows = await conn.execute(text("SELECT zone_id, camera_id FROM zones"))
    return dict(rows.all())


async def column_type(conn) -> str:
    return await conn.scalar(text("SELECT data_type FROM information_schema.columns "
                                  "WHERE table_name = 'zones' AND column_name = 'camera_id'"))


async def test_legacy_camera_ids_are_converted_and_round_trip(scratch_url):
    await asyncio.to_thread(migrations.upgrade, scratch_url, "0007")
    engine = create_async_engine(scratch_url)
    try:
        async with engine.begin() as conn:
            for camera_id, name in ((HALL, "hall"), (DOCK, "dock")):
                await conn.execute(text("INSERT INTO cameras (id, name, rtsp_url, fps, width, height) "
                                        "VALUES (:id, :name, 'rtsp://10.0.0.1/s', 10, 64, 64)"),
                                   {"id": camera_id, "name": name})
            for zone_id, camera_id in LEGACY.items():
                await conn.execute(text("INSERT INTO zones (id, zone_id, name, geometry, camera_id) VALUES "
                                        "(:id, :zone_id, :zone_id, CAST(:geometry AS jsonb), :camera_id)"),
                                   {"id": uuid.uuid4(), "zone_id": zone_id, "geometry": SQUARE,
                                    "camera_id": camera_id})

        await engine.dispose()  # prepared statements do not survive the column's change of type
        await asyncio.to_thread(migrations.upgrade, scratch_url, "0008")
        async with engine.begin() as conn:
            assert await camera_ids(conn) == {
                "Z_CANONICAL": HALL, "Z_OTHER_SPELLING": DOCK, "Z_NO_SUCH_CAMERA": None, "Z_NOT_A_UUID": None,
                "Z_ALMOST": None, "Z_NONE": None,
            }
            assert await column_type(conn) == "uuid"
            # The foreign key holds, and a camera's deletion detaches its zones.
            await conn.execute(text("DELETE FROM cameras WHERE id = :id"), {"id": HALL})
            assert (await camera_ids(conn))["Z_CANONICAL"] is None
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE zones SET camera_id = :id WHERE zone_id = 'Z_NONE'"),
                                   {"id": uuid.uuid4()})

        await engine.dispose()
        await asyncio.to_thread(migrations.downgrade, scratch_url, "0007")
        async with engine.begin() as conn:
            assert (await camera_ids(conn))["Z_OTHER_SPELLING"] == str(DOCK)
            assert await column_type(conn) == "character varying"
            await conn.execute(text("UPDATE zones SET camera_id = 'free text' WHERE zone_id = 'Z_NONE'"))
    finally:
        await engine.dispose()
