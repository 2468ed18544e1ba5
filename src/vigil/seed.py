"""Demo data for `vigil seed`: a small site with cameras, their zones, the people working there and a
few alerts.

Idempotent: what already exists (a camera name, a zone_id, a global_id, an alert of the same
source/kind/subject) is left as it is, so running it twice, or after editing the data, changes nothing.
Zones point at their camera (`camera_id`) and a camera lists its zones (`zone_ids`); both must exist,
so cameras are created first without zones and get their `zone_ids` once the zones are there.
"""

from __future__ import annotations

from typing import Any

from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vigil.alerts import service as alerts_service
from vigil.cameras import service as cameras_service
from vigil.cameras.schemas import CameraCreate, CameraUpdate
from vigil.core.cache import Cache
from vigil.core.db import session_scope
from vigil.core.pagination import PageParams
from vigil.people import service as people_service
from vigil.people.schemas import PersonCreate
from vigil.zones import service as zones_service
from vigil.zones.schemas import ZoneCreate


def _rect(x1: float, y1: float, x2: float, y2: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]]]}


def _camera(name: str, host: str, location: tuple[float, float]) -> dict[str, Any]:
    return {"name": name, "rtsp_url": f"rtsp://{host}:554/stream1", "fps": 25, "width": 1920, "height": 1080,
            "location": {"lat": location[0], "lon": location[1]}}


CAMERAS: list[dict[str, Any]] = [
    _camera("cam-hall-01", "10.20.0.11", (52.3702, 4.8952)),
    _camera("cam-dock-02", "10.20.0.12", (52.3705, 4.8960)),
    _camera("cam-gate-03", "10.20.0.13", (52.3698, 4.8945)),
    _camera("cam-yard-04", "10.20.0.14", (52.3695, 4.8958)),
]

# Image-plane pixels of a 1920x1080 camera view; two zones use the seed's corner format. `camera` is the
# name of a camera above (the zone's `camera_id` is that camera's id).
ZONES: list[dict[str, Any]] = [
    {"zone_id": "ZONE_001", "name": "Assembly line A", "kind": "working", "camera": "cam-hall-01",
     "geometry": _rect(120, 340, 980, 1040)},
    {"zone_id": "ZONE_002", "name": "Assembly line B", "kind": "working", "camera": "cam-hall-01",
     "x1": 1000, "y1": 340, "x2": 1820, "y2": 360, "x3": 1880, "y3": 1040, "x4": 1010, "y4": 1040},
    {"zone_id": "ZONE_003", "name": "Loading dock", "kind": "exclusion", "camera": "cam-dock-02",
     "geometry": {"type": "Polygon", "coordinates": [[[200, 500], [1700, 460], [1850, 1070], [90, 1070],
                                                      [200, 500]]]}},
    {"zone_id": "ZONE_004", "name": "Main entrance", "kind": "detection", "camera": "cam-gate-03",
     "x1": 640, "y1": 180, "x2": 1280, "y2": 180, "x3": 1400, "y3": 1000, "x4": 520, "y4": 1000},
    {"zone_id": "ZONE_005", "name": "Staff car park", "kind": "parking", "camera": "cam-yard-04",
     "geometry": _rect(0, 400, 1920, 1080)},
]

PEOPLE: list[dict[str, Any]] = [
    {"global_id": 1001, "name": "Amira Haddad", "zone_id": "ZONE_001"},
    {"global_id": 1002, "name": "Jonas Becker", "zone_id": "ZONE_001"},
    {"global_id": 1003, "name": "Li Wei", "zone_id": "ZONE_002"},
    {"global_id": 1004, "name": "Sofia Rossi", "zone_id": "ZONE_002"},
    {"global_id": 1005, "name": "Mateo García", "zone_id": "ZONE_002"},
    {"global_id": 1006, "name": "Aino Virtanen", "zone_id": "ZONE_004"},
    {"global_id": 1007, "name": "Kwame Mensah", "zone_id": None},
    {"global_id": 1008, "name": "Priya Nair", "zone_id": None},
]

ALERTS: list[dict[str, Any]] = [
    {"source": "reid", "kind": "restricted_zone", "severity": "critical",
     "subject": "global_id:1002/zone:ZONE_003", "title": "Jonas Becker entered Loading dock (exclusion zone)",
     "data": {"global_id": 1002, "zone_id": "ZONE_003", "camera_id": "cam-dock-02"}},
    {"source": "reid", "kind": "outside_working_zone", "severity": "warning",
     "subject": "global_id:1004/zone:ZONE_001",
     "title": "Sofia Rossi seen on Assembly line A, works on line B",
     "data": {"global_id": 1004, "zone_id": "ZONE_001", "camera_id": "cam-hall-01"}},
    {"source": "reid", "kind": "unknown_person", "severity": "info",
     "subject": "global_id:7731/zone:ZONE_004", "title": "Unknown person (global_id 7731) at Main entrance",
     "data": {"global_id": 7731, "zone_id": "ZONE_004", "camera_id": "cam-gate-03"}},
]


async def _seed(session: AsyncSession, cache: Cache) -> dict[str, int]:
    added = {"cameras": 0, "zones": 0, "people": 0, "alerts": 0}
    camera_ids, new_cameras = {}, []
    for spec in CAMERAS:
        camera = await cameras_service.find_camera(session, name=spec["name"])
        if camera is None:
            camera = await cameras_service.create_camera(session, camera_in=CameraCreate.model_validate(spec))
            new_cameras.append(camera)
            added["cameras"] += 1
        camera_ids[camera.name] = camera.id
    for spec in ZONES:
        if await zones_service.find_zone(session, zone_id=spec["zone_id"]) is None:
            zone_in = ZoneCreate.model_validate({k: v for k, v in spec.items() if k != "camera"}
                                                | {"camera_id": camera_ids[spec["camera"]]})
            await zones_service.create_zone(session, zone_in=zone_in, cache=cache)
            added["zones"] += 1
    for camera in new_cameras:  # cameras that were there before keep the zone_ids they have
        zone_ids = [z["zone_id"] for z in ZONES if z["camera"] == camera.name]
        await cameras_service.update_camera(session, camera_id=camera.id,
                                            camera_in=CameraUpdate(zone_ids=zone_ids))
    for spec in PEOPLE:
        if await people_service.find_by_global_id(session, global_id=spec["global_id"]) is None:
            person_in = PersonCreate.model_validate(spec)
            await people_service.create_person(session, person_in=person_in, cache=cache)
            added["people"] += 1
    for spec in ALERTS:
        existing = await alerts_service.list_alerts(session, page=PageParams(limit=1), source=spec["source"],
                                                    kind=spec["kind"], subject=spec["subject"])
        if existing["total"] == 0:
            await alerts_service.raise_alert(session, **spec)
            added["alerts"] += 1
    return added


async def seed(sessionmaker: async_sessionmaker[AsyncSession], cache: Cache) -> dict[str, int]:
    """Load the demo data in one transaction; returns how many rows of each kind were added."""
    async with session_scope(sessionmaker) as session:
        added = await _seed(session, cache)
    logger.info("seed added {} cameras, {} zones, {} people, {} alerts", added["cameras"], added["zones"],
                added["people"], added["alerts"])
    return added
