"""Scenario API on the real server: validation, listing, the state machine over HTTP, concurrency, dispatch."""

import asyncio
import json
import uuid
from datetime import datetime, timedelta

import pytest
import websockets
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.conftest import ADMIN_KEY, auth

API = "/api/v1/scenarios"


def is_utc(stamp: str) -> bool:
    return datetime.fromisoformat(stamp).utcoffset() == timedelta(0)


async def create(client, source="videos/lobby.avi", **params):
    r = await client.post(API, json={"source": source, "params": params})
    assert r.status_code == 201, r.text
    return r.json()


async def move(client, scenario_id, status, **extra):
    return await client.post(f"{API}/{scenario_id}/status", json={"status": status, **extra})


async def read_jobs(bootstrap, scenario_id, expected, timeout=15.0):
    """Jobs on `scenarios` for one scenario (the topic is shared with other tests)."""
    consumer = AIOKafkaConsumer("scenarios", bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    found = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(found) < expected and loop.time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                for record in batch:
                    job = json.loads(record.value)
                    if job.get("scenario_id") == scenario_id:
                        assert record.key == scenario_id.encode()
                        found.append(job)
    finally:
        await consumer.stop()
    return found


async def test_create_get_and_defaults(client):
    body = await create(client, "rtsp://cam:s3cret@93.184.216.34:554/stream1", detectors=["face"], sample_fps=2)
    assert body["status"] == "init_startup" and body["version"] == 1
    assert body["source"] == "rtsp://cam:***@93.184.216.34:554/stream1", "passwords never come back"
    assert body["params"]["detectors"] == ["face"] and body["params"]["sample_fps"] == 2
    assert body["latest_run"] is None and body["attempts"] == 0
    assert body["allowed_transitions"] == ["init_startup_processing", "failed"]
    got = (await client.get(f"{API}/{body['id']}")).json()
    assert got["id"] == body["id"] and is_utc(got["created_at"])
    default = await create(client, "https://93.184.216.34/clip.mp4")
    assert default["params"]["detectors"] == ["face", "person"]


async def test_a_scenario_without_source_waits_for_the_runners_default(client):
    body = (await client.post(API, json={})).json()
    assert body["source"] is None and body["status"] == "init_startup"


@pytest.mark.parametrize("payload", [
    {"source": ""},
    {"source": "   "},
    {"source": "videos/a\x00b.avi"},
    {"source": "videos/a\nb.avi"},
    {"source": "ftp://example.com/a.avi"},
    {"source": "javascript://alert(1)"},
    {"source": "http:///no-host.mp4"},
    {"source": "videos/"},
    {"source": "v/" + "x" * 3000},
    {"source": 42},
    {"source": "a.avi", "params": [1, 2]},
    {"source": "a.avi", "params": "detectors=face"},
    {"source": "a.avi", "params": {"detectors": ["car"]}},
    {"source": "a.avi", "params": {"detectors": []}},
    {"source": "a.avi", "params": {"sample_fps": 0}},
    {"source": "a.avi", "params": {"max_frames": -1}},
    {"source": "a.avi", "params": {"min_confidence": 2}},
    {"source": "a.avi", "params": {"unknown": 1}},
    {"source": "a.avi", "status": "active"},
])
async def test_bad_input_is_422_and_stores_nothing(client, payload):
    r = await client.post(API, json=payload)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(API)).json()["total"] == 0


async def test_list_filters_and_paginates(client):
    a = await create(client, "v/a.avi")
    b = await create(client, "v/b.avi")
    assert (await move(client, b["id"], "failed", reason="bad camera")).status_code == 200
    listed = (await client.get(API)).json()
    assert listed["total"] == 2 and [x["id"] for x in listed["items"]] == [b["id"], a["id"]]
    failed = (await client.get(API, params={"status": "failed"})).json()
    assert [x["id"] for x in failed["items"]] == [b["id"]] and failed["items"][0]["last_error"] == "bad camera"
    assert (await client.get(API, params={"status": "active"})).json()["total"] == 0
    assert len((await client.get(API, params={"limit": 1})).json()["items"]) == 1
    for bad in ({"status": "exploded"}, {"limit": 501}, {"offset": -1}):
        assert (await client.get(API, params=bad)).status_code == 422


async def test_unknown_ids_and_bad_status_values(client):
    missing = uuid.uuid4()
    assert (await client.get(f"{API}/{missing}")).status_code == 404
    assert (await move(client, missing, "failed")).status_code == 404
    assert (await client.get(f"{API}/{missing}/predictions")).status_code == 404
    assert (await client.get(f"{API}/{missing}/history")).status_code == 404
    assert (await client.delete(f"{API}/{missing}")).status_code == 404
    assert (await client.get(f"{API}/not-a-uuid")).status_code == 422
    s = await create(client)
    for body in ({"status": "exploded"}, {}, {"status": "failed", "extra": 1}, {"status": "failed", "version": 0}):
        r = await client.post(f"{API}/{s['id']}/status", json=body)
        assert r.status_code == 422, (body, r.text)


async def test_illegal_move_is_409_naming_the_allowed_moves(client):
    s = await create(client)
    r = await move(client, s["id"], "active")
    assert r.status_code == 409
    problem = r.json()
    assert problem["allowed"] == ["init_startup_processing", "failed"]
    assert "init_startup_processing" in problem["detail"] and problem["requested"] == "active"
    assert (await client.get(f"{API}/{s['id']}")).json()["version"] == 1, "nothing changed"


async def test_dispatch_publishes_a_job_through_the_outbox(client, server):
    s = await create(client, "videos/dock.avi", detectors=["person"], sample_fps=3)
    r = await move(client, s["id"], "init_startup_processing")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "init_startup_processing" and body["attempts"] == 1
    run = body["latest_run"]
    assert run["status"] == "queued" and run["attempt"] == 1 and run["frames_processed"] == 0
    jobs = await read_jobs(server.ctx.settings.kafka_bootstrap_servers, s["id"], 1)
    assert len(jobs) == 1
    assert jobs[0] == {"scenario_id": s["id"], "run_id": run["id"], "source": "videos/dock.avi",
                       "params": body["params"], "attempt": 1}
    assert jobs[0]["params"]["detectors"] == ["person"]


async def test_history_records_every_move_with_reason_and_author(client, make_key):
    writer = await make_key("write", name="operator")
    s = await create(client)
    sid = s["id"]
    assert (await move(client, sid, "failed", reason="camera offline")).status_code == 200
    r = await client.post(f"{API}/{sid}/status", json={"status": "init_startup"}, headers=auth(writer))
    assert r.status_code == 200 and r.json()["last_error"] is None and r.json()["version"] == 3
    hist = (await client.get(f"{API}/{sid}/history")).json()
    moves = [(h["from_status"], h["to_status"], h["version"]) for h in hist["items"]]
    assert moves == [(None, "init_startup", 1), ("init_startup", "failed", 2), ("failed", "init_startup", 3)]
    assert hist["items"][1]["reason"] == "camera offline"
    assert hist["items"][2]["by"] == "operator"
    assert all(is_utc(h["at"]) for h in hist["items"])


async def test_stop_waits_for_a_queued_run_and_failing_cancels_it(client):
    sid = (await create(client))["id"]
    assert (await move(client, sid, "init_startup_processing")).status_code == 200
    assert (await move(client, sid, "active")).status_code == 200  # the runner's move; the table allows it
    r = await move(client, sid, "in_shutdown_processing")
    # The run is still queued (no runner here): whoever picks the job up completes the shutdown.
    assert r.status_code == 200 and r.json()["status"] == "in_shutdown_processing"
    assert r.json()["latest_run"]["status"] == "queued"
    failed = (await move(client, sid, "failed", reason="given up")).json()
    assert failed["latest_run"]["status"] == "cancelled" and failed["last_error"] == "given up"
    again = (await move(client, sid, "init_startup")).json()
    assert again["status"] == "init_startup" and again["allowed_transitions"] == ["init_startup_processing", "failed"]
    redo = (await move(client, sid, "init_startup_processing")).json()
    assert redo["latest_run"]["id"] != failed["latest_run"]["id"] and redo["attempts"] == 1
    runs = (await client.get(f"{API}/{sid}/runs")).json()
    assert [x["status"] for x in runs["items"]] == ["cancelled", "queued"]


async def test_concurrent_transitions_cannot_both_win(client):
    s = await create(client)
    sid = s["id"]
    results = await asyncio.gather(*(move(client, sid, "failed", reason=f"racer {i}") for i in range(8)))
    codes = sorted(r.status_code for r in results)
    assert codes == [200] + [409] * 7, codes
    hist = (await client.get(f"{API}/{sid}/history")).json()["items"]
    assert [h["to_status"] for h in hist] == ["init_startup", "failed"]
    # Two different legal moves from the same version: one wins, the other is told to re-read.
    s = await create(client)
    sid = s["id"]
    a, b = await asyncio.gather(move(client, sid, "init_startup_processing", version=1),
                                move(client, sid, "failed", version=1))
    assert sorted([a.status_code, b.status_code]) == [200, 409]
    final = (await client.get(f"{API}/{sid}")).json()
    assert final["version"] == 2 and final["status"] in ("init_startup_processing", "failed")
    assert (await move(client, sid, "failed" if final["status"] != "failed" else "init_startup",
                       version=1)).status_code == 409


async def test_predictions_empty_and_delete(client):
    s = await create(client)
    body = (await client.get(f"{API}/{s['id']}/predictions")).json()
    assert body == {"scenario_id": s["id"], "run_id": None, "predictions": [], "total": 0, "limit": 50,
                    "offset": 0, "summary": []}
    assert (await client.get(f"{API}/{s['id']}/predictions", params={"class": "car"})).status_code == 422
    assert (await client.delete(f"{API}/{s['id']}")).status_code == 204
    assert (await client.get(f"{API}/{s['id']}")).status_code == 404


async def test_read_key_cannot_write(client, make_key):
    reader = await make_key("read")
    s = await create(client)
    assert (await client.get(API, headers=auth(reader))).status_code == 200
    assert (await client.post(API, json={"source": "a.avi"}, headers=auth(reader))).status_code == 403
    assert (await client.post(f"{API}/{s['id']}/status", json={"status": "failed"},
                              headers=auth(reader))).status_code == 403


async def test_updates_stream_on_websocket(client, server):
    s = await create(client)
    other = await create(client)
    url = f"{server.ws_url}/ws/scenarios?id={s['id']}"
    async with websockets.connect(url, additional_headers=auth(ADMIN_KEY)) as ws:
        await move(client, other["id"], "failed")
        await move(client, s["id"], "failed", reason="test")
        seen = []
        while not seen or seen[-1]["data"]["status"] != "failed":
            seen.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        # The creation may still have been on its way when we connected; the other scenario never shows.
        assert {m["data"]["id"] for m in seen} == {s["id"]}
        assert seen[-1]["type"] == "scenario.updated" and seen[-1]["data"]["last_error"] == "test"


async def test_dispatch_announces_once_with_its_run(client, server):
    s = await create(client)
    url = f"{server.ws_url}/ws/scenarios?id={s['id']}&status=init_startup_processing"
    async with websockets.connect(url, additional_headers=auth(ADMIN_KEY)) as ws:
        run = (await move(client, s["id"], "init_startup_processing")).json()["latest_run"]
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert first["type"] == "scenario.updated" and first["data"]["latest_run"]["id"] == run["id"]
        with pytest.raises(TimeoutError):  # no second, stale announcement of the same move
            await asyncio.wait_for(ws.recv(), 1.0)


async def test_retry_consumer_redispatches_once_per_failure_and_dead_letters_garbage(client, server):
    bootstrap = server.ctx.settings.kafka_bootstrap_servers
    sid = (await create(client))["id"]
    first = (await move(client, sid, "init_startup_processing")).json()["latest_run"]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        failure = {"scenario_id": sid, "run_id": first["id"], "attempt": 1, "error": "boom"}
        for _ in range(2):  # the same failure twice: handled once
            await producer.send_and_wait("retry_topic", json.dumps(failure).encode(), key=sid.encode())
        await producer.send_and_wait("retry_topic", b"{not json", key=sid.encode())
        for _ in range(50):
            runs = (await client.get(f"{API}/{sid}/runs")).json()["items"]
            if len(runs) == 2:
                break
            await asyncio.sleep(0.2)
        assert [(r["attempt"], r["status"]) for r in runs] == [(1, "failed"), (2, "queued")]
        assert runs[0]["error"] == "boom"
        second = {**failure, "run_id": runs[1]["id"], "attempt": 2, "error": "boom again"}
        await producer.send_and_wait("retry_topic", json.dumps(second).encode(), key=sid.encode())
    finally:
        await producer.stop()
    for _ in range(50):
        runs = (await client.get(f"{API}/{sid}/runs")).json()["items"]
        if len(runs) == 3:
            break
        await asyncio.sleep(0.2)
    # Ordered per scenario (the key): the duplicate was seen before attempt 2 failed, and changed nothing.
    assert [r["attempt"] for r in runs] == [1, 2, 3]
    jobs = await read_jobs(bootstrap, sid, 3)
    assert [j["attempt"] for j in jobs] == [1, 2, 3]
    dlq = AIOKafkaConsumer("retry_topic.dlq", bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await dlq.start()
    try:
        found = []
        for _ in range(50):
            found += [r for recs in (await dlq.getmany(timeout_ms=200)).values() for r in recs
                      if r.key == sid.encode()]
            if found:
                break
    finally:
        await dlq.stop()
    assert found and found[0].value == b"{not json"
