"""Two `vigil serve` processes on one stack behave as one app: blobs, WebSockets, exporters, jobs, SIGTERM.

The instances get a stack of their own (a fresh database, a Redis db, their own Kafka broker, their
own S3 bucket on the session's moto server), so the in-process test server's consumers, which share
the session broker, cannot take their messages.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from collections import Counter

import httpx
import pytest
import websockets

from tests.exporters.conftest import Receiver
from tests.instances import RULES_INTERVAL_S, H, Instance, eventually
from tests.plates.helpers import event, image_bytes
from tests.scenarios.helpers import RunnerProcess, make_video

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

async def job_runs(instance: Instance, job: str) -> float:
    async with httpx.AsyncClient(timeout=5) as c:
        text = (await c.get(f"{instance.url}/metrics")).text
    m = re.search(rf'^vigil_assets_job_runs_total{{job="{job}"}} ([0-9.e+]+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


class WsClient:
    """Collects every message of one WebSocket until closed."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.messages: list[dict] = []
        self.task: asyncio.Task | None = None
        self.ready = asyncio.Event()

    async def run(self) -> None:
        try:
            async with websockets.connect(self.url, additional_headers=H) as ws:
                self.ready.set()
                async for raw in ws:
                    self.messages.append(json.loads(raw))
        except websockets.ConnectionClosed:
            pass

    async def start(self) -> None:
        self.task = asyncio.create_task(self.run())
        await asyncio.wait_for(self.ready.wait(), 15)
        await asyncio.sleep(0.3)  # the hub has registered the client

    def ids(self) -> Counter:
        return Counter(m["data"]["id"] for m in self.messages if m["type"] == "plate.event")

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


def multipart(ev: dict, **parts: bytes) -> dict:
    files = {name: (f"{name}.jpg", data, "image/jpeg") for name, data in parts.items()}
    files["event"] = (None, json.dumps(ev), "application/json")
    return files


async def test_two_instances_behave_as_one(serve_stack, tmp_path):
    a = Instance("a", serve_stack.env, tmp_path)
    b = Instance("b", serve_stack.env, tmp_path)
    runner = None
    receiver = Receiver()
    ws_a = ws_b = None
    try:
        await asyncio.gather(a.wait_ready(), b.wait_ready())
        await receiver.start()
        async with httpx.AsyncClient(base_url=a.url, headers=H, timeout=30) as ca, \
                httpx.AsyncClient(base_url=b.url, headers=H, timeout=30) as cb:
            # ready / health on both, blobs on S3.
            for c in (ca, cb):
                health = (await c.get("/health")).json()
                assert health["status"] == "ok", health
                assert health["checks"]["storage"] == health["checks"]["storage"] | {"status": "ok", "backend": "s3"}

            r = await ca.post("/api/v1/exporters", json={
                "name": "hook", "kind": "webhook", "config": {"url": receiver.url}, "event_types": ["plate.event"],
                "retry": {"max_attempts": 5, "backoff_seconds": 0.2}, "enabled": True})
            assert r.status_code == 201, r.text
            exporter_id = r.json()["id"]
            cam = (await cb.post("/api/v1/cameras", json={
                "name": "Gate", "rtsp_url": "rtsp://10.0.0.2/s", "fps": 10, "width": 640, "height": 480})).json()
            ws_a, ws_b = WsClient(f"ws://127.0.0.1:{a.port}/ws/plates"), WsClient(f"ws://127.0.0.1:{b.port}/ws/plates")
            await ws_a.start()
            await ws_b.start()

            # Events ingested through both instances, each with its own frame.
            ids: list[str] = []
            frames: dict[str, bytes] = {}
            for i in range(10):
                frame = image_bytes("JPEG", (64, 48), (i * 20 % 255, 10, 200))
                via = ca if i % 2 == 0 else cb
                r = await via.post("/api/v1/plates/events",
                                   files=multipart(event(cam["id"], plate=f"AB{i:03d}", event_uid=f"e{i}"),
                                                   frame=frame))
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
                frames[r.json()["id"]] = frame

            # A blob written through one instance reads through the other.
            for n, event_id in enumerate(ids):
                other = cb if n % 2 == 0 else ca
                got = await other.get(f"/api/v1/plates/events/{event_id}/frame")
                assert got.status_code == 200 and got.content == frames[event_id]

            # Every WebSocket client sees every event, once.
            for ws in (ws_a, ws_b):
                await eventually(lambda ws=ws: set(ws.ids()) >= set(ids), timeout=30)
            # The exporter delivers each event exactly once (two instances, one consumer group).
            await eventually(lambda: len({rec["body"]["data"]["id"] for rec in receiver.received}) >= len(ids),
                             timeout=60)

            # A scenario job runs once: one runner, the job dispatched through one instance, moved via the other.
            runner = RunnerProcess("two-1", serve_stack, tmp_path)
            # Blocking helpers go to threads: the WebSocket clients must keep answering pings meanwhile.
            await asyncio.to_thread(runner.wait_assigned, 90)
            video = await asyncio.to_thread(make_video, serve_stack.media_dir / "clip.avi", frames=6)
            r = await ca.post("/api/v1/scenarios", json={"source": str(video), "params": {"sample_fps": 100}})
            assert r.status_code == 201, r.text
            sid = r.json()["id"]
            assert (await cb.post(f"/api/v1/scenarios/{sid}/status",
                                  json={"status": "init_startup_processing"})).status_code == 200

            async def finished():
                body = (await ca.get(f"/api/v1/scenarios/{sid}")).json()
                run = body.get("latest_run") or {}
                return body if run.get("status") in ("completed", "failed", "stopped", "cancelled") else None

            body = await eventually(finished, timeout=120)
            assert body["status"] == "active" and body["attempts"] == 1, body
            run = body["latest_run"]
            assert run["status"] == "completed" and run["frames_processed"] == 6
            history = (await cb.get(f"/api/v1/scenarios/{sid}/history")).json()["items"]
            assert [h["to_status"] for h in history] == ["init_startup", "init_startup_processing", "active"]
            preds = (await cb.get(f"/api/v1/scenarios/{sid}/predictions", params={"limit": 500})).json()
            keys = Counter((p["frame"], p["class"], tuple(p["bbox"])) for p in preds["predictions"])
            assert preds["total"] == run["predictions"] > 0 and set(keys.values()) == {1}, "each detection once"

            # Asset rules: one turn per interval across both instances (the Redis turn outlives 0.9 interval).
            start = [await job_runs(i, "rules") for i in (a, b)]
            t0 = time.monotonic()
            await asyncio.sleep(6 * RULES_INTERVAL_S)
            end = [await job_runs(i, "rules") for i in (a, b)]
            window = time.monotonic() - t0
            runs = sum(end) - sum(start)
            assert 1 <= runs <= window / (0.9 * RULES_INTERVAL_S) + 1, (runs, window, start, end)

            # SIGTERM of B loses nothing: events ingested during and after its shutdown are all delivered.
            more: list[str] = []

            async def ingest(n0: int, count: int) -> None:
                for i in range(n0, n0 + count):
                    r = await ca.post("/api/v1/plates/events",
                                      json=event(cam["id"], plate=f"CD{i:03d}", event_uid=f"m{i}"))
                    assert r.status_code == 201, r.text
                    more.append(r.json()["id"])
                    await asyncio.sleep(0.1)

            during = asyncio.create_task(ingest(0, 10))
            await asyncio.sleep(0.3)
            b.proc.send_signal(signal.SIGTERM)
            await during
            await asyncio.to_thread(b.proc.wait, 30)
            assert b.proc.returncode == 0, b.log()[-3000:]
            await ingest(10, 5)
            everything = set(ids) | set(more)
            await eventually(lambda: {rec["body"]["data"]["id"] for rec in receiver.received} >= everything,
                             timeout=90, what="webhook misses events after B's SIGTERM")
            await eventually(lambda: set(ws_a.ids()) >= everything, timeout=30,
                             what=lambda: (f"A's client misses {len(everything - set(ws_a.ids()))} of "
                                           f"{len(everything)}; task done={ws_a.task.done()}"))
            await asyncio.sleep(1.0)  # a duplicate would arrive by now
            per_event = Counter(rec["body"]["data"]["id"] for rec in receiver.received)
            assert set(per_event) == everything and set(per_event.values()) == {1}, per_event
            assert set(ws_a.ids().values()) == {1}, "A's client saw no event twice"
            assert set(ws_b.ids()) >= set(ids) and set(ws_b.ids().values()) == {1}
            listed = (await ca.get(f"/api/v1/exporters/{exporter_id}/deliveries", params={"limit": 500})).json()
            rows = listed["items"] if isinstance(listed, dict) else listed
            assert len(rows) == len(everything) and {d["status"] for d in rows} == {"delivered"}
            health = (await ca.get("/health")).json()
            assert health["status"] == "ok" and (await ca.get("/ready")).status_code == 200
    finally:
        for ws in (ws_a, ws_b):
            if ws is not None:
                await ws.close()
        if runner is not None:
            runner.stop()
        await receiver.stop()
        for inst in (a, b):
            inst.stop()
