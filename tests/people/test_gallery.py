"""ReID gallery (Qdrant and pgvector, each test on both).

Store embeddings, identify, dimension fixed by the first vector, bad vectors.
"""

import math
import uuid

import pytest

PROBLEM = "application/problem+json"


def unit(*xs):
    n = math.sqrt(sum(x * x for x in xs))
    return [x / n for x in xs]


async def person(client, global_id, name):
    r = await client.post("/api/v1/people", json={"global_id": global_id, "name": name})
    assert r.status_code == 201, r.text
    return r.json()


async def embed(client, p, vectors, **kw):
    return await client.post(f"/api/v1/people/{p['id']}/embeddings", json={"vectors": vectors} | kw)


async def test_store_and_identify_best_first_one_match_per_person(client, gallery):
    ada, bob, cy = await person(client, 1, "Ada"), await person(client, 2, "Bob"), await person(client, 3, "Cy")
    r = await embed(client, ada, [unit(1, 0, 0, 0), unit(0.9, 0.1, 0, 0)], camera_id="cam-1", model="osnet")
    assert r.status_code == 201 and r.json() == {"stored": 2, "dimension": 4}
    assert (await embed(client, bob, [unit(0, 1, 0, 0)])).status_code == 201
    assert (await embed(client, cy, [unit(0, 0, 1, 0)])).status_code == 201
    assert await gallery.count() == 4

    r = await client.post("/api/v1/people/identify", json={"vector": unit(1, 0.2, 0, 0), "top_k": 2})
    assert r.status_code == 200, r.text
    matches = r.json()["matches"]
    assert [m["global_id"] for m in matches] == [1, 2], "Ada's two vectors count once"
    assert matches[0]["person_id"] == ada["id"] and matches[0]["name"] == "Ada"
    assert matches[0]["score"] > matches[1]["score"] > 0
    assert matches[0]["score"] == pytest.approx(max(sum(a * b for a, b in zip(unit(1, 0.2, 0, 0), v, strict=True))
                                                    for v in (unit(1, 0, 0, 0), unit(0.9, 0.1, 0, 0))), abs=1e-5)

    r = await client.post("/api/v1/people/identify", json={"vector": unit(1, 0.2, 0, 0), "min_score": 0.5})
    assert [m["global_id"] for m in r.json()["matches"]] == [1]
    r = await client.post("/api/v1/people/identify", json={"vector": unit(0, 0, 0, 1)})
    assert r.json()["matches"] == [], "orthogonal: score 0 is not above the default threshold of 0.0"


async def test_dimension_is_fixed_by_the_first_vector(client, gallery):
    ada = await person(client, 1, "Ada")
    assert (await embed(client, ada, [[0.1, 0.2, 0.3]])).status_code == 201
    r = await embed(client, ada, [[0.1, 0.2, 0.3, 0.4]])
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM and "3-dimensional" in r.json()["detail"]
    r = await client.post("/api/v1/people/identify", json={"vector": [1.0, 0.0]})
    assert r.status_code == 422 and "3-dimensional" in r.json()["detail"]
    r = await embed(client, ada, [[0.1, 0.2, 0.3], [0.1, 0.2]])
    assert r.status_code == 422 and "same dimension" in r.json()["detail"]
    assert await gallery.count() == 1, "nothing half-written"


async def test_bad_vectors_and_parameters_are_422(client, gallery):
    ada = await person(client, 1, "Ada")
    for body in ({"vectors": []}, {"vectors": [[]]}, {"vectors": [["x"]]}, {"vectors": [[0.0, 0.0]]},
                 {"vectors": [[1.0]], "colour": "red"}, {"vectors": [[1.0] * 4097]}):
        r = await client.post(f"/api/v1/people/{ada['id']}/embeddings", json=body)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (body, r.text)
    for raw in ('{"vectors": [[1.0, NaN]]}', '{"vectors": [[1.0, Infinity]]}', '{"vectors": [[-Infinity, 1]]}'):
        r = await client.post(f"/api/v1/people/{ada['id']}/embeddings", content=raw,
                              headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (raw, r.text)
    # Finite in Python, but overflowing (or vanishing) in the gallery's 32-bit floats when normalised:
    # stored, such a vector would score NaN against every query.
    for body in ({"vectors": [[1e308, 1.0]]}, {"vectors": [[1e20, 0.0]]}, {"vectors": [[1e-30, 0.0]]}):
        r = await client.post(f"/api/v1/people/{ada['id']}/embeddings", json=body)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (body, r.text)
    for body in ({"vector": [1.0], "top_k": 0}, {"vector": [1.0], "top_k": 101}, {"vector": []},
                 {"vector": [1.0], "min_score": 2}, {"vector": [0.0, 0.0]}, {"vector": [1e308, 1.0]}):
        r = await client.post("/api/v1/people/identify", json=body)
        assert r.status_code == 422, (body, r.text)
    r = await client.post("/api/v1/people/identify", content='{"vector": [NaN, 1]}',
                          headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert (await client.post("/api/v1/people/identify", json={"vector": [1.0], "top_k": 100})).status_code == 200
    assert await gallery.dimension() is None, "no bad vector created the collection"


async def test_unknown_person_and_empty_gallery(client, gallery):
    r = await client.post(f"/api/v1/people/{uuid.uuid4()}/embeddings", json={"vectors": [[1.0, 0.0]]})
    assert r.status_code == 404
    r = await client.post("/api/v1/people/identify", json={"vector": [1.0, 0.0]})
    assert r.status_code == 200 and r.json() == {"matches": []}


async def test_deleting_a_person_deletes_their_vectors(client, gallery):
    ada, bob = await person(client, 1, "Ada"), await person(client, 2, "Bob")
    await embed(client, ada, [unit(1, 0), unit(1, 0.1)])
    await embed(client, bob, [unit(0.8, 0.2)])
    assert (await client.delete(f"/api/v1/people/{ada['id']}")).status_code == 204
    assert await gallery.count() == 1
    assert await gallery.count(uuid.UUID(ada["id"])) == 0
    r = await client.post("/api/v1/people/identify", json={"vector": unit(1, 0)})
    assert [m["global_id"] for m in r.json()["matches"]] == [2]


async def test_without_qdrant_the_gallery_routes_are_503_and_people_still_work(server, client, gallery,
                                                                              gallery_backend):
    ada = await person(client, 1, "Ada")
    saved, server.ctx.qdrant = server.ctx.qdrant, None
    try:
        r = await embed(client, ada, [[1.0, 0.0]])
        if gallery_backend == "pgvector":  # the gallery is in PostgreSQL: Qdrant is not needed at all
            assert r.status_code == 201
            r = await client.post("/api/v1/people/identify", json={"vector": [1.0, 0.0]})
            assert [m["global_id"] for m in r.json()["matches"]] == [1]
            assert (await client.delete(f"/api/v1/people/{ada['id']}")).status_code == 204
            assert await gallery.count() == 0
            return
        assert r.status_code == 503 and r.headers["content-type"] == PROBLEM
        assert (await client.post("/api/v1/people/identify", json={"vector": [1.0, 0.0]})).status_code == 503
        assert (await client.delete(f"/api/v1/people/{ada['id']}")).status_code == 204
    finally:
        server.ctx.qdrant = saved
