"""Runners end to end on the embedded broker: real `vigil runner` processes, real videos, real Kafka."""

import asyncio
import json
import uuid
from collections import Counter

import pytest
import websockets
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import murmur2

from tests.conftest import ADMIN_KEY, auth
from tests.scenarios.helpers import (
    API,
    RunnerProcess,
    make_video,
    run_done,
    scenario,
    start_scenario,
    wait_for,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def workdir(base_settings, tmp_path_factory):
    """Under the media root: file sources elsewhere are refused (issue 12)."""
    path = base_settings.media_dir / tmp_path_factory.mktemp("runners").name
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def runners(base_settings, workdir):
    """Two runners in `runners_group`, both holding partitions before any test starts."""
    first = RunnerProcess("r1", base_settings, workdir)
    procs = {"r1": first}
    try:
        alone = first.wait_assigned()
        procs["r2"] = second = RunnerProcess("r2", base_settings, workdir)
        second.wait_assigned()
        first.wait_assigned(exclude=alone)  # the group rebalanced: r1 gave some partitions to r2
        yield procs
    finally:
        for proc in procs.values():
            proc.stop()


async def predictions(client, sid, **params):
    r = await client.get(f"{API}/{sid}/predictions", params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    return r.json()


def partition_of(key: str, partitions: int = 3) -> int:
    """Where aiokafka's default partitioner puts a key."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def assert_stored_once(body):
    keys = Counter((p["frame"], p["class"], tuple(p["bbox"])) for p in body["predictions"])
    assert body["total"] == len(body["predictions"]) and all(n == 1 for n in keys.values()), keys.most_common(3)


async def test_video_goes_active_with_predictions_then_stops(client, server, runners, workdir):
    video = make_video(workdir / "walk.avi", frames=6)
    r = await client.post(API, json={"source": str(video), "params": {"sample_fps": 100}})
    sid = r.json()["id"]
    seen = []
    async with websockets.connect(f"{server.ws_url}/ws/scenarios?id={sid}", additional_headers=auth(ADMIN_KEY)) as ws:
        assert (await client.post(f"{API}/{sid}/status", json={"status": "init_startup_processing"})).status_code == 200
        body = await wait_for(lambda: scenario(client, sid), run_done)
        while not (any(m["type"] == "scenario.updated" and m["data"]["status"] == "active" for m in seen)
                   and any(m["type"] == "scenario.progress" for m in seen)):
            seen.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    assert body["status"] == "active" and body["attempts"] == 1
    run = body["latest_run"]
    assert run["status"] == "completed" and run["runner"] in runners
    assert run["frames_read"] == 6 and run["frames_processed"] == 6 and run["fps"] > 0
    history = (await client.get(f"{API}/{sid}/history")).json()["items"]
    assert [(h["from_status"], h["to_status"]) for h in history] == [
        (None, "init_startup"), ("init_startup", "init_startup_processing"), ("init_startup_processing", "active")]
    assert history[-1]["by"] == f"runner:{run['runner']}"

    preds = await predictions(client, sid)
    assert preds["run_id"] == run["id"] and preds["total"] == run["predictions"] > 0
    assert_stored_once(preds)
    summary = {s["class"]: s for s in preds["summary"]}
    assert summary["face"]["frames"] >= 4 and 0 < summary["face"]["avg_confidence"] <= 1
    faces = [p for p in preds["predictions"] if p["class"] == "face"]
    assert faces[0]["frame"] < faces[-1]["frame"] and faces[0]["bbox"][0] < faces[-1]["bbox"][0], "it moves right"
    assert all(set(p) == {"frame", "ts", "class", "confidence", "bbox"} for p in preds["predictions"])
    assert faces[-1]["ts"] == pytest.approx(faces[-1]["frame"] / 10, abs=1e-3)
    only_faces = await predictions(client, sid, **{"class": "face"})
    assert {p["class"] for p in only_faces["predictions"]} == {"face"}
    progress = next(m["data"] for m in seen if m["type"] == "scenario.progress")
    assert progress["id"] == sid and progress["run"]["id"] == run["id"]

    # Stopping a scenario whose run has finished: nothing to wait for, so it ends inactive at once.
    stopped = (await client.post(f"{API}/{sid}/status", json={"status": "in_shutdown_processing"})).json()
    assert stopped["status"] == "inactive"
    history = (await client.get(f"{API}/{sid}/history")).json()["items"]
    assert [h["to_status"] for h in history[-2:]] == ["in_shutdown_processing", "inactive"]


async def test_stop_tells_the_running_runner_and_ends_inactive(client, runners, workdir):
    # A file read at its own frame rate, like a camera: long enough to stop it, cheap to process.
    video = make_video(workdir / "long.avi", frames=60, fps=10)
    sid = await start_scenario(client, str(video), detectors=["face"], sample_fps=2, realtime=True)
    await wait_for(lambda: scenario(client, sid),
                   lambda b: b["status"] == "active" and b["latest_run"]["frames_read"] > 0)
    r = await client.post(f"{API}/{sid}/status", json={"status": "in_shutdown_processing", "reason": "done"})
    assert r.status_code == 200 and r.json()["status"] == "in_shutdown_processing"
    body = await wait_for(lambda: scenario(client, sid), lambda b: b["status"] == "inactive", timeout=30)
    run = body["latest_run"]
    assert run["status"] == "stopped" and 0 < run["frames_read"] < 60
    history = (await client.get(f"{API}/{sid}/history")).json()["items"]
    assert history[-1]["from_status"] == "in_shutdown_processing" and history[-1]["by"].startswith("runner:")


async def test_deleting_a_running_scenario_stops_its_runner_cleanly(client, runners, workdir):
    video = make_video(workdir / "deleted.avi", frames=60, fps=10)
    sid = await start_scenario(client, str(video), detectors=["face"], sample_fps=2, realtime=True)
    body = await wait_for(lambda: scenario(client, sid),
                          lambda b: b["status"] == "active" and b["latest_run"]["frames_read"] > 0)
    holder = runners[body["latest_run"]["runner"]]
    assert (await client.delete(f"{API}/{sid}")).status_code == 204
    # The runner finds the run gone at its next batch and drops it: no error, nothing written back.
    await wait_for(lambda: asyncio.sleep(0, holder.log()), lambda log: f"dropped scenario {sid}" in log, timeout=20)
    assert (await client.get(f"{API}/{sid}")).status_code == 404
    assert f"scenario {sid} run" not in "".join(
        line for line in holder.log().splitlines() if "ERROR" in line or "failed" in line)


async def test_poison_job_goes_to_the_dlq_and_the_runner_goes_on(server, runners):
    bootstrap = server.ctx.settings.kafka_bootstrap_servers
    marker = f"not a job {uuid.uuid4()}".encode()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait("scenarios", marker, key=b"poison")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer("scenarios.dlq", bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        async def dead_letters():
            batches = await consumer.getmany(timeout_ms=300)
            return [r for recs in batches.values() for r in recs if r.value == marker]
        found = await wait_for(dead_letters, bool, timeout=30)
    finally:
        await consumer.stop()
    assert dict(found[0].headers)["x-dlq-reason"].startswith(b"PoisonMessage")
    assert all(p.proc.poll() is None for p in runners.values())


async def test_two_runners_share_a_burst_and_do_each_job_once(client, runners, workdir):
    video = make_video(workdir / "short.avi", frames=3)
    # Scenario ids are the message keys: make the burst cover every partition, so both runners get work.
    ids: list[str] = []
    while len({partition_of(i) for i in ids}) < 3 or len(ids) < 6:
        r = await client.post(API, json={"source": str(video), "params": {"detectors": ["face"], "sample_fps": 100}})
        ids.append(r.json()["id"])
        assert len(ids) < 40
    for sid in ids:
        assert (await client.post(f"{API}/{sid}/status", json={"status": "init_startup_processing"})).status_code == 200
    bodies = [await wait_for(lambda sid=sid: scenario(client, sid), run_done) for sid in ids]
    assert all(b["status"] == "active" and b["latest_run"]["status"] == "completed" for b in bodies)
    assert {b["latest_run"]["runner"] for b in bodies} == {"r1", "r2"}
    for sid, body in zip(ids, bodies, strict=True):
        runs = (await client.get(f"{API}/{sid}/runs")).json()
        assert runs["total"] == 1 and body["latest_run"]["frames_processed"] == 3
        preds = await predictions(client, sid)
        assert_stored_once(preds)
        assert preds["total"] == body["latest_run"]["predictions"]


async def test_unopenable_source_is_retried_then_failed_with_an_alert(client, runners, workdir):
    garbage = workdir / "garbage.avi"
    garbage.write_bytes(b"this is not a video" * 100)
    for source in (str(workdir / "nonexistent" / "camera-7.avi"), str(garbage)):
        sid = await start_scenario(client, source, detectors=["face"])
        body = await wait_for(lambda sid=sid: scenario(client, sid), lambda b: b["status"] == "failed", timeout=60)
        assert body["attempts"] == 3 and body["latest_run"]["status"] == "failed"
        assert "camera-7.avi" in body["last_error"] or "garbage.avi" in body["last_error"]
        runs = (await client.get(f"{API}/{sid}/runs")).json()["items"]
        assert [(r["attempt"], r["status"]) for r in runs] == [(1, "failed"), (2, "failed"), (3, "failed")]
        assert all(r["error"] for r in runs)
        history = (await client.get(f"{API}/{sid}/history")).json()["items"]
        assert [h["to_status"] for h in history] == ["init_startup", "init_startup_processing", "failed"]
        assert history[-1]["by"] == "retry" and "3 attempts" in history[-1]["reason"]
        alerts = (await client.get("/api/v1/alerts", params={"source": "scenario", "subject": sid})).json()
        assert alerts["total"] == 1
        alert = alerts["items"][0]
        assert alert["severity"] == "warning" and alert["status"] == "open" and alert["data"]["attempts"] == 3
        # Restarting the scenario resolves its alert.
        assert (await client.post(f"{API}/{sid}/status", json={"status": "init_startup"})).status_code == 200
        assert (await client.get(f"/api/v1/alerts/{alert['id']}")).json()["status"] == "resolved"


async def test_runner_stopped_mid_run_hands_the_run_to_another(client, base_settings, runners, workdir):
    video = make_video(workdir / "handover.avi", frames=40, fps=10)
    sid = await start_scenario(client, str(video), detectors=["face"], sample_fps=5, realtime=True)
    body = await wait_for(lambda: scenario(client, sid),
                          lambda b: b["status"] == "active" and b["latest_run"]["frames_read"] >= 5)
    leaving = body["latest_run"]["runner"]
    runners[leaving].stop()  # SIGTERM: the run is released, its message left uncommitted
    assert runners[leaving].proc.returncode == 0
    assert f"run {body['latest_run']['id']} released by {leaving}" in runners[leaving].log()
    body = await wait_for(lambda: scenario(client, sid), run_done, timeout=90)
    run = body["latest_run"]
    assert run["status"] == "completed" and run["runner"] != leaving and run["frames_read"] == 40
    preds = await predictions(client, sid)
    assert_stored_once(preds)
    # A replacement keeps two runners in the group for the next test.
    runners[leaving] = replacement = RunnerProcess(f"{leaving}b", base_settings, workdir)
    replacement.wait_assigned()


async def test_killed_runner_is_replaced_and_the_job_completes(client, runners, workdir):
    """The job's offset was committed when the run was claimed; after a SIGKILL the run's heartbeat goes
    stale and the app's sweeper re-dispatches it (attempt 2), which the surviving runner completes."""
    video = make_video(workdir / "killme.avi", frames=40, fps=10)
    sid = await start_scenario(client, str(video), detectors=["face"], sample_fps=5, realtime=True)
    body = await wait_for(lambda: scenario(client, sid),
                          lambda b: b["status"] == "active" and b["latest_run"]["frames_read"] >= 5)
    victim, first_run = body["latest_run"]["runner"], body["latest_run"]["id"]
    runners = {p.name: p for p in runners.values()}
    runners[victim].kill()  # SIGKILL: no release; only its silence tells
    survivor = next(name for name, p in runners.items() if name != victim and p.proc.poll() is None)
    body = await wait_for(lambda: scenario(client, sid), lambda b: b["latest_run"]["id"] != first_run
                          and run_done(b), timeout=90)
    run = body["latest_run"]
    assert run["status"] == "completed" and run["runner"] == survivor, run
    assert run["frames_read"] == 40 and body["status"] == "active" and body["attempts"] == 2
    runs = (await client.get(f"{API}/{sid}/runs")).json()["items"]
    assert [(r["attempt"], r["status"]) for r in runs] == [(1, "failed"), (2, "completed")]
    assert "went silent" in runs[0]["error"] and victim in runs[0]["error"]
    preds = await predictions(client, sid)
    assert_stored_once(preds)
    assert preds["total"] == run["predictions"]
