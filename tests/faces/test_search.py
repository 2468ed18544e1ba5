"""Find-similar: transformed copies of one face are the nearest matches; HNSW serves cross-event search."""

from __future__ import annotations

import json

from sqlalchemy import text

from tests.faces import images
from tests.faces.test_events import make_event
from tests.faces.test_images import upload
from vigil.faces import clustering

SEARCH = "/api/v1/faces/search"


async def search(client, data: bytes | None = None, **fields):
    files = {"file": ("query.jpg", data, "image/jpeg")} if data is not None else None
    form = {k: (json.dumps(v) if k == "embedding" else str(v).lower() if isinstance(v, bool) else str(v))
            for k, v in fields.items()}
    return await client.post(SEARCH, data=form, files=files)


async def seed_copies(client) -> dict[str, dict]:
    """The astronaut and four transformed copies in one event; the coffee in another."""
    await make_event(client)
    await make_event(client, code="other")
    uploaded = {"original": (await upload(client, images.astronaut())).json()}
    for name in ("flipped", "cropped", "darker", "rescaled"):
        uploaded[name] = (await upload(client, images.variants()[name], name=f"{name}.jpg")).json()
    assert (await upload(client, images.coffee(), event_code="other")).status_code == 201
    return uploaded


async def test_transformed_copies_are_found_as_the_same_person(client):
    uploaded = await seed_copies(client)
    real_faces = {img["faces"][0]["id"]: name for name, img in uploaded.items()}  # largest face of each
    r = await search(client, images.variants()["png"], event_code="wedding-2026", top_k=20)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["metric"] == "l2" and body["threshold"] == 0.6 and body["exact"] is True
    assert body["model"] == "dlib_resnet_v1"
    assert body["query_faces"] >= 1 and len(body["queries"]) == 1, "the largest query face only"
    assert images.near(body["queries"][0]["bbox"], images.ASTRONAUT_FACE)
    distances = [m["distance"] for m in body["matches"]]
    assert distances == sorted(distances), "nearest first"
    # Every copy's face is a match, and those matches come before anything else.
    top = body["matches"][:len(real_faces)]
    assert {m["face_id"] for m in top} == set(real_faces)
    assert all(m["is_match"] and m["distance"] < 0.6 for m in top), top
    assert all(not m["is_match"] for m in body["matches"][len(real_faces):])
    assert top[0]["face_id"] == uploaded["original"]["faces"][0]["id"] and top[0]["distance"] < 0.1
    assert {m["event_code"] for m in body["matches"]} == {"wedding-2026"}

    cut = (await search(client, images.variants()["png"], event_code="wedding-2026", max_distance=0.6)).json()
    assert {m["face_id"] for m in cut["matches"]} == set(real_faces)
    two = (await search(client, images.variants()["png"], event_code="wedding-2026", top_k=2)).json()
    assert [m["face_id"] for m in two["matches"]] == [m["face_id"] for m in top[:2]]

    # Every face of the query image, each answering its own query_index.
    every = (await search(client, images.variants()["png"], event_code="wedding-2026", all_faces=True)).json()
    assert len(every["queries"]) == every["query_faces"] >= 2
    assert {m["query_index"] for m in every["matches"]} == set(range(len(every["queries"])))

    # Across all events (HNSW): the same nearest faces.
    everywhere = (await search(client, images.variants()["png"], top_k=5)).json()
    assert everywhere["exact"] is False
    assert {m["face_id"] for m in everywhere["matches"]} == set(real_faces)


async def test_search_by_embedding(server, client):
    uploaded = await seed_copies(client)
    face_id = uploaded["darker"]["faces"][0]["id"]
    async with server.ctx.engine.connect() as conn:
        vector = json.loads(
            await conn.scalar(text("SELECT embedding::text FROM faces WHERE id = :id"), {"id": face_id}))
    body = (await search(client, embedding=vector, top_k=3, event_code="wedding-2026")).json()
    assert body["query_faces"] == 1 and body["queries"] == [{"bbox": None}]
    assert body["matches"][0]["face_id"] == face_id and body["matches"][0]["distance"] < 1e-5
    assert body["matches"][0]["image_id"] == uploaded["darker"]["id"]


async def test_search_errors(client):
    await make_event(client)
    await upload(client, images.coffee())

    async def problem(data=None, **fields):
        r = await search(client, data, **fields)
        assert r.headers["content-type"] == "application/problem+json", r.text
        return r.status_code, r.json()["detail"]

    assert await problem(images.coffee(), event_code="wedding-2026") == (422, "no face found in the query image")
    assert (await problem(images.astronaut(), event_code="nope"))[0] == 404
    assert (await problem(b"plain text"))[0] == 415
    code, detail = await problem(embedding=[0.1] * 127)
    assert code == 422 and "128" in detail
    assert (await problem())[0] == 422, "neither image nor embedding"
    assert (await problem(images.coffee(), embedding=[0.0] * 128))[0] == 422, "both"
    r = await client.post(SEARCH, data={"embedding": "[NaN" + ", 0.0" * 127 + "]"})
    assert r.status_code == 422
    assert (await problem(embedding=[0.0] * 128, top_k=0))[0] == 422
    assert (await problem(embedding=[0.0] * 128, top_k=101))[0] == 422
    assert (await problem(embedding=[0.0] * 128, max_distance=-1))[0] == 422
    # Finite for Python, infinite as the 32-bit floats pgvector stores: refused, not a 500.
    assert (await problem(embedding=[1e308] * 128))[0] == 422
    assert (await problem(embedding=[1e308] * 128, event_code="wedding-2026"))[0] == 422


SYNTHETIC_FACES = """
INSERT INTO faces (id, image_id, event_id, seq, x, y, w, h, det_score, model, alignment, embedding, created_at)
SELECT gen_random_uuid(), :image_id, :event_id, g, 0, 0, 10, 10, 1.0, 'dlib_resnet_v1', 'synthetic',
       (SELECT array_agg(random() * 0.2 - 0.1) FROM generate_series(1, 128) WHERE g > 0)::vector, now()
FROM generate_series(1, :n) AS g
"""


async def test_cross_event_search_uses_the_hnsw_index(server, client):
    """EXPLAIN of the service's own statements: across events the planner walks the HNSW index once
    the table is large enough that a sequential scan plus sort costs more; within one event it uses
    the exact scan. Vectors are inserted directly (synthetic, 3,000) to keep the test fast."""
    event = await make_event(client)
    image = (await upload(client, images.coffee())).json()
    async with server.ctx.engine.begin() as conn:
        await conn.execute(text(SYNTHETIC_FACES), {"image_id": image["id"], "event_id": event["id"], "n": 3000})
        await conn.execute(text("ANALYZE faces"))

        async def plan(event_id) -> str:
            stmt = clustering.nearest_stmt([0.0] * 128, model="dlib_resnet_v1", event_id=event_id, top_k=10)
            sql = stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
            return "\n".join(r[0] for r in await conn.execute(text(f"EXPLAIN {sql}")))

        across = await plan(None)
        assert "ix_faces_embedding_hnsw" in across, across
        within = await plan(event["id"])
        assert "ix_faces_embedding_hnsw" not in within and "Sort" in within, within
        rows = (await conn.execute(clustering.nearest_stmt([0.0] * 128, model="dlib_resnet_v1", event_id=None,
                                                        top_k=10))).all()
        assert len(rows) == 10 and [r.distance for r in rows] == sorted(r.distance for r in rows)


async def test_vectors_of_another_model_are_never_searched(server, client):
    """Issue 7: never mix vectors of two models in one search. A face of another model with the very
    same vector (distance 0) must not show up, within an event (exact) or across events (HNSW)."""
    await make_event(client)
    uploaded = (await upload(client, images.astronaut())).json()
    face_id = uploaded["faces"][0]["id"]
    async with server.ctx.engine.begin() as conn:
        vector = json.loads(
            await conn.scalar(text("SELECT embedding::text FROM faces WHERE id = :id"), {"id": face_id}))
        foreign = await conn.scalar(text(
            "INSERT INTO faces (id, image_id, event_id, seq, x, y, w, h, det_score, model, alignment, embedding,"
            " created_at) SELECT gen_random_uuid(), image_id, event_id, 99, x, y, w, h, det_score, 'other_model',"
            " 'other', embedding, now() FROM faces WHERE id = :id RETURNING id"), {"id": face_id})
    for scope in ({"event_code": "wedding-2026"}, {}):
        body = (await search(client, embedding=vector, top_k=10, **scope)).json()
        found = {m["face_id"] for m in body["matches"]}
        assert face_id in found and str(foreign) not in found, (scope, body)
