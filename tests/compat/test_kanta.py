"""Kanta's uploader flow: an event, photos through /pics, its clusters, and /find-similar."""

from __future__ import annotations

from tests.faces import images

PROBLEM = "application/problem+json"


async def test_pics_clusters_find_similar(client):
    r = await client.post("/events", json={"code": "party", "name": "Party"})
    assert r.status_code == 201, r.text
    assert [e["code"] for e in (await client.get("/events")).json()] == ["party"]
    # The first upload may start the encoder pool and load dlib's models: give it time on a busy machine.
    r = await client.post("/pics", data={"event_code": "party"},
                          files={"file": ("astronaut.jpg", images.astronaut(), "image/jpeg")}, timeout=120)
    assert r.status_code == 201, r.text
    pic = r.json()
    assert pic["event_code"] == "party" and pic["faces"]
    cluster_id = pic["faces"][0]["cluster_id"]
    again = await client.post("/pics", data={"event_code": "party"},
                              files={"file": ("again.jpg", images.astronaut(), "image/jpeg")})
    assert again.status_code == 200 and again.json()["id"] == pic["id"], "the same file is stored once"

    listed = (await client.get("/pics", params={"event_code": "party"})).json()
    assert isinstance(listed, list) and [p["id"] for p in listed] == [pic["id"]]
    assert (await client.get(f"/pics/{pic['id']}")).json()["width"] == 512
    clusters = (await client.get("/clusters", params={"event_code": "party"})).json()
    assert {c["cluster_id"] for c in clusters} == {f["cluster_id"] for f in pic["faces"]}
    assert sum(c["size"] for c in clusters) == len(pic["faces"])
    r = await client.get("/clusters", params={"event_code": "party", "cluster_id": cluster_id},
                         follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"].startswith("/pics?")
    followed = await client.get("/clusters", params={"event_code": "party", "cluster_id": cluster_id},
                                follow_redirects=True)
    assert [p["id"] for p in followed.json()] == [pic["id"]]

    r = await client.post("/find-similar", data={"event_code": "party", "top_k": "3"},
                          files={"file": ("q.jpg", images.astronaut(), "image/jpeg")})
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["query_faces"] >= 1 and found["matches"][0]["image_id"] == pic["id"]
    assert found["matches"][0]["distance"] < 0.01

    r = await client.post("/pics", data={"event_code": "nope"},
                          files={"file": ("a.jpg", images.astronaut(), "image/jpeg")})
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = await client.post("/pics", data={"event_code": "party"}, files={"file": ("a.jpg", b"junk", "image/jpeg")})
    assert r.status_code == 415
    assert (await client.put("/events/party", json={"name": "Party!", "running": False})).json()["running"] is False
    r = await client.post("/pics", data={"event_code": "party"},
                          files={"file": ("c.jpg", images.coffee(), "image/jpeg")})
    assert r.status_code == 409, "a stopped event takes no uploads"
    assert (await client.delete(f"/pics/{pic['id']}")).status_code == 204
    assert (await client.delete("/events/party")).status_code == 204
    assert (await client.get("/events/party")).status_code == 404
