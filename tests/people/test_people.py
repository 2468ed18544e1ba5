"""People API: CRUD and its errors, search and zone filter, PUT as full update, directory cache, stats."""

import asyncio
import uuid

import pytest

from tests.conftest import auth

SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]]}
PROBLEM = "application/problem+json"


async def make_zone(client, zone_id):
    r = await client.post("/api/v1/zones", json={"zone_id": zone_id, "name": zone_id.title(), "geometry": SQUARE})
    assert r.status_code == 201, r.text


async def make_person(client, global_id, name, zone_id=None):
    r = await client.post("/api/v1/people", json={"global_id": global_id, "name": name, "zone_id": zone_id})
    assert r.status_code == 201, r.text
    return r.json()


async def test_crud_round_trip(client):
    await make_zone(client, "ZONE_001")
    p = await make_person(client, 7, "Ada Lovelace", "ZONE_001")
    assert p["global_id"] == 7 and p["zone_id"] == "ZONE_001" and uuid.UUID(p["id"])
    url = f"/api/v1/people/{p['id']}"
    assert (await client.get(url)).json() == p

    r = await client.patch(url, json={"name": "Ada King"})
    assert r.status_code == 200 and r.json()["name"] == "Ada King" and r.json()["zone_id"] == "ZONE_001"
    r = await client.patch(url, json={"zone_id": None})
    assert r.json()["zone_id"] is None and r.json()["global_id"] == 7

    r = await client.put(url, json={"global_id": 8, "name": "Ada", "zone_id": "ZONE_001"})
    assert r.status_code == 200 and (r.json()["global_id"], r.json()["zone_id"]) == (8, "ZONE_001")
    r = await client.put(url, json={"global_id": 8, "name": "Ada"})
    assert r.status_code == 200 and r.json()["zone_id"] is None, "PUT replaces everything: no zone given -> null"
    assert (await client.put(url, json={"name": "only a name"})).status_code == 422

    assert (await client.delete(url)).status_code == 204
    assert (await client.get(url)).status_code == 404
    assert (await client.delete(url)).status_code == 404


async def test_a_person_is_encoded_exactly_as_its_response_model_would_encode_it(server, client):
    """GET /people/{id} encodes the row without validating it into PersonRead (core/reads.json_rows): the
    bytes must still be the model's own encoding, with and without a zone, for a round-second time, and
    with text that needs escaping."""
    from datetime import UTC, datetime

    from pydantic import TypeAdapter
    from sqlalchemy import update

    from vigil.core.db import session_scope
    from vigil.people.models import Person
    from vigil.people.schemas import PersonRead

    adapter = TypeAdapter(PersonRead)
    await make_zone(client, "ZONE_ENC")
    made = []
    for global_id, body in ((91401, {"name": 'Zoë "Q" \\ x', "zone_id": "ZONE_ENC"}), (91402, {"name": "No Zone"})):
        r = await client.post("/api/v1/people", json={"global_id": global_id, **body})
        assert r.status_code == 201, r.text
        made.append(r.json())
    round_second = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with session_scope(server.ctx.sessionmaker) as session:
        await session.execute(update(Person).where(Person.global_id == 91402).values(created_at=round_second))
    for person in made:
        r = await client.get(f"/api/v1/people/{person['id']}")
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.content == adapter.dump_json(adapter.validate_json(r.content)), r.content
    assert r.json()["created_at"] == "2026-01-02T03:04:05Z" and r.json()["zone_id"] is None
    first = (await client.get(f"/api/v1/people/{made[0]['id']}")).json()
    assert first == {**made[0], "updated_at": first["updated_at"]} and first["name"] == 'Zoë "Q" \\ x'


async def test_errors(client):
    await make_zone(client, "ZONE_001")
    first = await make_person(client, 1, "One")
    second = await make_person(client, 2, "Two")

    r = await client.post("/api/v1/people", json={"global_id": 1, "name": "Again"})
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM and "global_id 1" in r.json()["detail"]
    r = await client.patch(f"/api/v1/people/{second['id']}", json={"global_id": 1})
    assert r.status_code == 409
    assert (await client.patch(f"/api/v1/people/{first['id']}", json={"global_id": 1})).status_code == 200, \
        "keeping one's own global_id is not a conflict"

    r = await client.post("/api/v1/people", json={"global_id": 3, "name": "Three", "zone_id": "ZONE_404"})
    assert r.status_code == 422 and "ZONE_404" in r.json()["detail"]
    assert (await client.patch(f"/api/v1/people/{first['id']}", json={"zone_id": "ZONE_404"})).status_code == 422
    assert (await client.put(f"/api/v1/people/{first['id']}",
                             json={"global_id": 1, "name": "x", "zone_id": "ZONE_404"})).status_code == 422

    for bad in ({"global_id": -1, "name": "x"}, {"global_id": "seven", "name": "x"}, {"global_id": 4},
                {"global_id": 4, "name": ""}, {"global_id": 4, "name": "x", "age": 3}):
        r = await client.post("/api/v1/people", json=bad)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, bad
    assert (await client.patch(f"/api/v1/people/{first['id']}", json={"name": None})).status_code == 422
    assert (await client.get("/api/v1/people/not-a-uuid")).status_code == 422
    assert (await client.patch(f"/api/v1/people/{uuid.uuid4()}", json={"name": "x"})).status_code == 404
    assert (await client.put(f"/api/v1/people/{uuid.uuid4()}", json={"global_id": 9, "name": "x"})).status_code == 404
    assert (await client.get("/api/v1/people")).json()["total"] == 2, "nothing half-written"


async def test_concurrent_duplicates_give_one_201_and_409s(client):
    results = await asyncio.gather(*(client.post("/api/v1/people", json={"global_id": 42, "name": f"n{i}"})
                                     for i in range(8)))
    codes = sorted(r.status_code for r in results)
    assert codes == [201] + [409] * 7


async def test_search_filter_and_pagination(client):
    await make_zone(client, "ZONE_A")
    await make_zone(client, "ZONE_B")
    await make_person(client, 3, "Grace Hopper", "ZONE_A")
    await make_person(client, 1, "Alan Turing", "ZONE_B")
    await make_person(client, 2, "grace_kelly 100%", "ZONE_A")
    await make_person(client, 4, "Edsger Dijkstra")

    async def gids(**params):
        body = (await client.get("/api/v1/people", params=params)).json()
        return [p["global_id"] for p in body["items"]]

    assert await gids() == [1, 2, 3, 4]
    assert await gids(q="GRACE") == [2, 3]
    assert await gids(q="100%") == [2], "LIKE wildcards in q are matched literally"
    assert await gids(q="_") == [2]
    assert await gids(zone_id="ZONE_A") == [2, 3]
    assert await gids(zone_id="ZONE_A", q="hopper") == [3]
    assert await gids(zone_id="ZONE_NONE") == []
    body = (await client.get("/api/v1/people", params={"limit": 2, "offset": 1})).json()
    assert [p["global_id"] for p in body["items"]] == [2, 3] and body["total"] == 4
    assert (await client.get("/api/v1/people", params={"limit": 501})).status_code == 422


async def test_stats(client):
    await make_zone(client, "ZONE_A")
    await make_zone(client, "ZONE_B")
    for gid, zid in ((1, "ZONE_A"), (2, "ZONE_A"), (3, "ZONE_B"), (4, None)):
        await make_person(client, gid, f"P{gid}", zid)
    assert (await client.get("/api/v1/people/stats")).json() == {
        "total": 4,
        "by_zone": [{"zone_id": "ZONE_A", "count": 2}, {"zone_id": "ZONE_B", "count": 1},
                    {"zone_id": None, "count": 1}],
    }


async def directory_stats(client):
    return (await client.get("/api/v1/cache/stats")).json()["caches"].get(
        "people.directory", {"hits": 0, "misses": 0, "keys": 0})


async def test_directory_is_cached_and_invalidated_by_every_write(client):
    await make_zone(client, "ZONE_A")
    p = await make_person(client, 5, "Five", "ZONE_A")
    assert (await client.get("/api/v1/people/directory")).json() == {"5": {"name": "Five", "zone_id": "ZONE_A"}}
    assert (await client.get("/api/v1/people/directory")).status_code == 200
    stats = await directory_stats(client)
    assert (stats["misses"], stats["hits"], stats["keys"]) == (1, 1, 1)

    async def expect(directory):
        before = await directory_stats(client)
        assert (await client.get("/api/v1/people/directory")).json() == directory
        assert (await directory_stats(client))["misses"] == before["misses"] + 1, "the write invalidated it"

    await make_person(client, 6, "Six")
    await expect({"5": {"name": "Five", "zone_id": "ZONE_A"}, "6": {"name": "Six", "zone_id": None}})
    await client.patch(f"/api/v1/people/{p['id']}", json={"name": "Cinq"})
    await expect({"5": {"name": "Cinq", "zone_id": "ZONE_A"}, "6": {"name": "Six", "zone_id": None}})
    await client.put(f"/api/v1/people/{p['id']}", json={"global_id": 55, "name": "Cinq", "zone_id": "ZONE_A"})
    await expect({"55": {"name": "Cinq", "zone_id": "ZONE_A"}, "6": {"name": "Six", "zone_id": None}})
    await client.patch("/api/v1/zones/ZONE_A", json={"name": "renamed"})
    await expect({"55": {"name": "Cinq", "zone_id": "ZONE_A"}, "6": {"name": "Six", "zone_id": None}})
    await client.delete("/api/v1/zones/ZONE_A", params={"force": "true"})
    await expect({"55": {"name": "Cinq", "zone_id": None}, "6": {"name": "Six", "zone_id": None}})
    await make_zone(client, "ZONE_B")
    await expect({"55": {"name": "Cinq", "zone_id": None}, "6": {"name": "Six", "zone_id": None}})
    await client.delete(f"/api/v1/people/{p['id']}")
    await expect({"6": {"name": "Six", "zone_id": None}})
    # A rejected write changes nothing, so the cache stays warm.
    await client.post("/api/v1/people", json={"global_id": 6, "name": "dup"})
    before = await directory_stats(client)
    await client.get("/api/v1/people/directory")
    assert (await directory_stats(client))["hits"] == before["hits"] + 1


async def test_scopes(client, anon, make_key):
    read = await make_key("read")
    assert (await anon.get("/api/v1/people")).status_code == 401
    assert (await anon.get("/api/v1/people/directory", headers=auth(read))).status_code == 200
    assert (await anon.post("/api/v1/people", json={"global_id": 1, "name": "x"},
                            headers=auth(read))).status_code == 403
    ingest = await make_key("ingest")
    assert (await anon.get("/api/v1/people", headers=auth(ingest))).status_code == 403


@pytest.mark.parametrize("path", ["/api/v1/people/directory", "/api/v1/people/stats"])
async def test_static_paths_are_not_taken_for_ids(client, path):
    assert (await client.get(path)).status_code == 200
