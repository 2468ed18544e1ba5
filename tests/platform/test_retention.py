"""Retention: real rows with old timestamps are purged (with their blobs), new ones and kept kinds stay."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import timedelta

from sqlalchemy import func, select, text, update

from tests.faces import images
from tests.faces.test_events import make_event
from tests.plates.helpers import event, image_bytes, make_camera
from vigil import registry
from vigil.alerts.models import Alert
from vigil.assets.geofences.models import GeofenceEvent
from vigil.assets.tracking.models import LocationEstimate
from vigil.core.db import utcnow
from vigil.core.retention import RETENTION_LOCK, run_once
from vigil.core.storage import content_key
from vigil.exporters.models import Delivery, Exporter
from vigil.faces.models import Face, FaceEvent, FaceImage
from vigil.plates.models import PlateEvent
from vigil.scenarios.models import Prediction, Scenario, ScenarioRun

OLD = timedelta(days=400)


def ctx_with(server, **settings):
    return dataclasses.replace(server.ctx, settings=server.ctx.settings.model_copy(update=settings))


async def count(server, model, *where) -> int:
    async with server.ctx.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def seed_rows(server, client) -> dict:
    """Two of each kind: one far past every default retention, one fresh."""
    now = utcnow()
    site = (await client.post("/api/v1/sites", json={"name": "Yard"})).json()
    asset = (await client.post("/api/v1/assets", json={"name": "a", "tag_id": "T1", "site_id": site["id"]})).json()
    fence = (await client.post("/api/v1/geofences", json={
        "name": "f", "site_id": site["id"], "kind": "circle", "center": [1, 1], "radius_m": 2,
        "alert_on": ["enter"], "severity": "info"})).json()
    async with server.ctx.sessionmaker() as session, session.begin():
        exporter = Exporter(name="hook", kind="webhook", config={"url": "http://127.0.0.1:9/x"},
                            event_types=["plate.event"], enabled=False)
        scenario = Scenario(source="rtsp://camera.example/s")
        session.add_all([exporter, scenario])
        await session.flush()
        run = ScenarioRun(scenario_id=scenario.id, attempt=1, status="completed")
        session.add(run)
        await session.flush()
        for at in (now - OLD, now):
            session.add(LocationEstimate(asset_id=uuid.UUID(asset["id"]), site_id=uuid.UUID(site["id"]), x=1, y=1,
                                         method="single", accuracy_m=1, gateways=1, estimated_at=at))
            session.add(GeofenceEvent(asset_id=uuid.UUID(asset["id"]), geofence_id=uuid.UUID(fence["id"]),
                                      kind="enter", at=at, x=1, y=1))
            session.add(Prediction(scenario_id=scenario.id, run_id=run.id, frame=1, ts=0.1, label="face",
                                   confidence=0.9, bbox=[1, 2, 3, 4], created_at=at))
            for status in ("delivered", "pending"):
                session.add(Delivery(exporter_id=exporter.id, event_id=uuid.uuid4().hex, event_type="plate.event",
                                     payload={"x": 1}, status=status, created_at=at, updated_at=at))
            for status in ("resolved", "open"):
                session.add(Alert(source="test", kind="k", subject=f"{status}-{at.isoformat()}", severity="info",
                                  status=status, title="t", resolved_at=at if status == "resolved" else None))
    return {"now": now}


def multipart(ev: dict, **parts: bytes) -> dict:
    files = {name: (f"{name}.bin", data, "application/octet-stream") for name, data in parts.items()}
    files["event"] = (None, json.dumps(ev), "application/json")
    return files


async def test_old_rows_go_new_rows_and_live_ones_stay(server, client):
    await seed_rows(server, client)
    deleted = await run_once(server.ctx, registry.retention_policies())
    assert deleted is not None
    assert deleted["asset_locations"] == 1 and deleted["geofence_events"] == 1
    assert deleted["scenario_predictions"] == 1
    assert deleted["exporter_deliveries"] == 1  # the old delivered one; an old pending one is never purged
    assert deleted["resolved_alerts"] == 1  # the old resolved one; open alerts stay whatever their age
    assert await count(server, LocationEstimate) == 1 and await count(server, GeofenceEvent) == 1
    assert await count(server, Prediction) == 1
    assert await count(server, Delivery, Delivery.status == "pending") == 2
    assert await count(server, Delivery, Delivery.status == "delivered") == 1
    assert await count(server, Alert, Alert.status == "open") == 2
    assert await count(server, Alert, Alert.status == "resolved") == 1
    # A second run finds nothing more.
    again = await run_once(server.ctx, registry.retention_policies())
    assert again is not None and sum(again.values()) == 0
    metrics = (await client.get("/metrics")).text
    assert 'vigil_retention_deleted_total{kind="asset_locations"}' in metrics
    assert 'vigil_retention_runs_total{result="ok"}' in metrics


async def test_zero_keeps_a_kind_and_chunks_delete_everything_old(server, client):
    await seed_rows(server, client)
    await seed_rows_again(server)
    ctx = ctx_with(server, retention_locations_days=0, retention_chunk=2)
    deleted = await run_once(ctx, registry.retention_policies())
    assert deleted["asset_locations"] == 0 and await count(server, LocationEstimate) == 2
    # Chunks of 2 still reach every old prediction (1 + 5 of them).
    assert deleted["scenario_predictions"] == 6 and await count(server, Prediction) == 1


async def seed_rows_again(server) -> None:
    async with server.ctx.sessionmaker() as session, session.begin():
        run = await session.scalar(select(ScenarioRun))
        for i in range(5):
            session.add(Prediction(scenario_id=run.scenario_id, run_id=run.id, frame=i + 2, ts=0.1, label="face",
                                   confidence=0.9, bbox=[1, 2, 3, 4], created_at=utcnow() - OLD))


async def test_one_instance_at_a_time(server, client):
    await seed_rows(server, client)
    async with server.ctx.engine.connect() as other:  # another instance mid-run holds the lock
        assert await other.scalar(text("SELECT pg_try_advisory_lock(:id)"), {"id": RETENTION_LOCK})
        try:
            assert await run_once(server.ctx, registry.retention_policies()) is None
            assert await count(server, LocationEstimate) == 2  # nothing touched
        finally:
            await other.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": RETENTION_LOCK})
    assert (await run_once(server.ctx, registry.retention_policies()))["asset_locations"] == 1


async def test_plate_events_go_with_their_images_unless_shared(server, client, blob_backend):
    cam = await make_camera(client)
    shared = image_bytes("JPEG", (64, 48), (40, 41, 42))
    own = image_bytes("JPEG", (64, 48), (43, 44, 45))
    crop = image_bytes("PNG", (30, 10), (46, 47, 48))
    old1 = (await client.post("/api/v1/plates/events",
                              files=multipart(event(cam, event_uid="old-1"), frame=shared, crop=crop))).json()
    old2 = (await client.post("/api/v1/plates/events",
                              files=multipart(event(cam, event_uid="old-2"), frame=own))).json()
    new = (await client.post("/api/v1/plates/events",
                             files=multipart(event(cam, event_uid="new"), frame=shared))).json()
    async with server.ctx.sessionmaker() as session, session.begin():
        await session.execute(update(PlateEvent).where(PlateEvent.id.in_([old1["id"], old2["id"]]))
                              .values(created_at=utcnow() - OLD))
    deleted = await run_once(server.ctx, registry.retention_policies())
    assert deleted["plate_events"] == 2
    assert (await client.get(f"/api/v1/plates/events/{old1['id']}")).status_code == 404
    assert not await blob_backend.exists(content_key(own, prefix="plates/frames", ext="jpg"))
    assert not await blob_backend.exists(content_key(crop, prefix="plates/crops", ext="png"))
    # The fresh event shares the old one's frame: the blob stays and still serves.
    assert await blob_backend.exists(content_key(shared, prefix="plates/frames", ext="jpg"))
    assert (await client.get(new["frame_url"])).content == shared


async def test_faces_of_finished_events_go_running_ones_stay(server, client, blob_backend):
    done = await make_event(client, code="done-2020")
    live = await make_event(client, code="live")
    img_done = (await client.post("/api/v1/faces/images", data={"event_code": "done-2020"},
                                  files={"file": ("a.jpg", images.astronaut(), "image/jpeg")},
                                  timeout=90)).json()  # face detection is slow on a busy machine
    (await client.post("/api/v1/faces/images", data={"event_code": "live"},
                       files={"file": ("a.jpg", images.astronaut(), "image/jpeg")}, timeout=90)).json()
    assert img_done["faces"]
    async with server.ctx.sessionmaker() as session, session.begin():
        await session.execute(update(FaceEvent).where(FaceEvent.code == "done-2020")
                              .values(running=False, ends_at=utcnow() - OLD, starts_at=utcnow() - OLD - OLD))
    deleted = await run_once(server.ctx, registry.retention_policies())
    assert deleted["faces"] == 1
    assert (await client.get(f"/api/v1/faces/images/{img_done['id']}")).status_code == 404
    assert not await blob_backend.exists(content_key(images.astronaut(), prefix=f"faces/{done['id']}", ext="jpg"))
    assert await blob_backend.exists(content_key(images.astronaut(), prefix=f"faces/{live['id']}", ext="jpg"))
    assert await count(server, FaceImage) == 1
    assert await count(server, Face, Face.event_id == uuid.UUID(done["id"])) == 0
    # The finished event stays as a record; its clusters went with its faces.
    assert (await client.get("/api/v1/faces/events/done-2020")).status_code == 200
    assert (await client.get("/api/v1/faces/clusters", params={"event_code": "done-2020"})).json() == []
