"""Clusters: copies of one face join one cluster at upload; a background recompute rebuilds them."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text

from tests.faces import images
from tests.faces.test_events import make_event
from tests.faces.test_images import upload

CLUSTERS = "/api/v1/faces/clusters"


async def seed(client) -> dict[str, dict]:
    await make_event(client)
    uploaded = {"original": (await upload(client, images.astronaut())).json()}
    for name in ("flipped", "cropped", "darker", "rescaled"):
        uploaded[name] = (await upload(client, images.variants()[name], name=f"{name}.jpg")).json()
    await upload(client, images.coffee())
    return uploaded


def person(uploaded: dict[str, dict]) -> set[str]:
    """The astronaut's face in each copy (the largest face of each image)."""
    return {img["faces"][0]["id"] for img in uploaded.values()}


async def wait_for_job(client, job_id: str, timeout: float = 30.0) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            job = (await client.get(f"{CLUSTERS}/jobs/{job_id}")).json()
            if job["status"] in ("done", "failed"):
                return job
            await asyncio.sleep(0.1)


async def test_copies_join_one_cluster_at_upload(client):
    uploaded = await seed(client)
    clusters_of_person = {img["faces"][0]["cluster_id"] for img in uploaded.values()}
    assert len(clusters_of_person) == 1 and None not in clusters_of_person
    cluster_id = clusters_of_person.pop()
    others = {f["cluster_id"] for img in uploaded.values() for f in img["faces"][1:]}
    assert cluster_id not in others, "the detector's stray boxes are not the astronaut"

    listed = (await client.get(CLUSTERS, params={"event_code": "wedding-2026"})).json()
    assert listed[0]["cluster_id"] == cluster_id and listed[0]["size"] == 5
    assert len(listed[0]["face_ids"]) == 5 and set(listed[0]["face_ids"]) == person(uploaded)
    assert listed[0]["face_ids"][0] == uploaded["original"]["faces"][0]["id"], "oldest first"
    assert set(listed[0]["image_ids"]) == {img["id"] for img in uploaded.values()}
    assert [c["size"] for c in listed] == sorted((c["size"] for c in listed), reverse=True)
    sample = (await client.get(CLUSTERS, params={"event_code": "wedding-2026", "sample": 2, "min_size": 2})).json()
    assert all(c["size"] >= 2 for c in sample) and len(sample[0]["face_ids"]) == 2

    # Images filtered by cluster: the five photos of the astronaut, not the coffee.
    by_cluster = (await client.get("/api/v1/faces/images", params={"cluster_id": cluster_id})).json()
    assert {i["id"] for i in by_cluster["items"]} == {img["id"] for img in uploaded.values()}

    # Deleting a photo shrinks its cluster; a cluster left empty disappears.
    await client.delete(f"/api/v1/faces/images/{uploaded['darker']['id']}")
    after = (await client.get(CLUSTERS, params={"event_code": "wedding-2026"})).json()
    assert {c["cluster_id"]: c["size"] for c in after}[cluster_id] == 4


async def test_recompute_rebuilds_clusters_in_the_background(server, client):
    uploaded = await seed(client)
    # Scatter the faces: every face its own cluster, as if they had been uploaded out of reach.
    async with server.ctx.engine.begin() as conn:
        await conn.execute(text("""
            WITH fresh AS (SELECT f.id AS face_id, gen_random_uuid() AS cluster_id, f.event_id FROM faces f),
                 made AS (INSERT INTO face_clusters (id, event_id, model, created_at)
                          SELECT cluster_id, event_id, 'dlib_resnet_v1', now() FROM fresh)
            UPDATE faces SET cluster_id = fresh.cluster_id FROM fresh WHERE faces.id = fresh.face_id
        """))
    scattered = (await client.get(CLUSTERS, params={"event_code": "wedding-2026"})).json()
    assert all(c["size"] == 1 for c in scattered)
    faces_total = sum(len(img["faces"]) for img in uploaded.values())

    r = await client.post(f"{CLUSTERS}/recompute", params={"event_code": "wedding-2026"})
    assert r.status_code == 202, r.text
    queued = r.json()
    assert queued["status"] == "queued" and queued["event_code"] == "wedding-2026" and queued["progress"] == 0.0
    job = await wait_for_job(client, queued["id"])
    assert job["status"] == "done" and job["phase"] == "done", job
    assert job["total"] == job["processed"] == faces_total and job["progress"] == 1.0
    assert job["started_at"] and job["finished_at"] and job["error"] is None

    listed = (await client.get(CLUSTERS, params={"event_code": "wedding-2026"})).json()
    assert job["clusters"] == len(listed) < faces_total
    assert listed[0]["size"] == 5 and set(listed[0]["face_ids"]) == person(uploaded)
    old_ids = {c["cluster_id"] for c in scattered}
    assert not old_ids & {c["cluster_id"] for c in listed}, "the old clusters are replaced"
    # New uploads keep joining the recomputed cluster.
    again = (await upload(client, images.variants()["png"], name="again.png", content_type="image/png")).json()
    assert again["faces"][0]["cluster_id"] == listed[0]["cluster_id"]


async def test_recompute_errors(server, client):
    event = await make_event(client)
    assert (await client.post(f"{CLUSTERS}/recompute", params={"event_code": "nope"})).status_code == 404
    assert (await client.post(f"{CLUSTERS}/recompute")).status_code == 422
    assert (await client.get(f"{CLUSTERS}/jobs/{uuid.uuid4()}")).status_code == 404
    assert (await client.get(CLUSTERS, params={"event_code": "nope"})).status_code == 404
    assert (await client.get(CLUSTERS, params={"event_code": "wedding-2026"})).json() == []
    # Numbers past what the database can compare with are refused, not a 500.
    for params in ({"min_size": 2**31}, {"offset": 2**63}):
        r = await client.get(CLUSTERS, params={"event_code": "wedding-2026", **params})
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
        assert [["query", *params]] == [e["loc"] for e in r.json()["errors"]]
    # An active job (fresh progress, so no worker takes it over) blocks a second one.
    async with server.ctx.engine.begin() as conn:
        await conn.execute(text("""
            INSERT INTO face_cluster_jobs (id, event_id, status, phase, total, processed, created_at, updated_at)
            VALUES (:id, :event_id, 'running', 'clustering', 10, 3, now(), now())
        """), {"id": str(uuid.uuid4()), "event_id": event["id"]})
    busy = await client.post(f"{CLUSTERS}/recompute", params={"event_code": "wedding-2026"})
    assert busy.status_code == 409 and busy.json()["job_id"]
    running = (await client.get(f"{CLUSTERS}/jobs/{busy.json()['job_id']}")).json()
    assert running["status"] == "running" and running["progress"] == 0.3


async def test_recompute_of_an_empty_event(client):
    await make_event(client)
    job = (await client.post(f"{CLUSTERS}/recompute", params={"event_code": "wedding-2026"})).json()
    done = await wait_for_job(client, job["id"])
    assert done["status"] == "done" and done["total"] == 0 and done["clusters"] == 0


async def test_saving_a_recompute_tolerates_faces_deleted_or_added_meanwhile(server, client):
    """The vectors are read, clustered, then saved: faces gone by then are skipped, and faces
    uploaded since join the new clusters by the upload rule."""
    from vigil.core.db import session_scope
    from vigil.faces import clustering

    uploaded = await seed(client)
    event_id = uuid.UUID((await client.get("/api/v1/faces/events/wedding-2026")).json()["id"])
    async with session_scope(server.ctx.sessionmaker) as session:
        face_ids, _ = await clustering.event_vectors(session, event_id=event_id, model="dlib_resnet_v1")
    original = uploaded["original"]["faces"][0]["id"]
    kept = [f for f in face_ids if str(f) != original]  # as if the original's face arrived after the read
    gone = uuid.uuid4()  # as if a face had been deleted after the read
    job_id = uuid.uuid4()
    async with server.ctx.engine.begin() as conn:
        await conn.execute(text("""
            INSERT INTO face_cluster_jobs (id, event_id, status, phase, total, processed, created_at, updated_at)
            VALUES (:id, :event_id, 'running', 'saving', :n, :n, now(), now())
        """), {"id": str(job_id), "event_id": str(event_id), "n": len(kept) + 1})
    labels = [0 if str(f) in person(uploaded) else i + 1 for i, f in enumerate(kept)]
    async with session_scope(server.ctx.sessionmaker) as session:
        count = await clustering.apply_clustering(session, job_id=job_id, event_id=event_id, model="dlib_resnet_v1",
                                                  face_ids=[*kept, gone], labels=[*labels, 0], threshold=0.6)
    listed = (await client.get(CLUSTERS, params={"event_code": "wedding-2026"})).json()
    assert count == len(listed) and listed[0]["size"] == 5 and set(listed[0]["face_ids"]) == person(uploaded)
    assert (await client.get(f"{CLUSTERS}/jobs/{job_id}")).json()["status"] == "done"
