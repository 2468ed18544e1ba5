async def test_health_ok(client):
    r = await client.get("/health")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok", body
    assert set(body["checks"]) == {"database", "redis", "kafka", "redpanda", "qdrant", "storage"}
