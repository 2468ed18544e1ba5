"""People/ReID benchmarks on the embedded stack (nothing is asserted; numbers are printed and saved).

    .venv/bin/python bench/people_reid.py [--alerts 300] [--rate 20] [--people 1000] [--seconds 10]

1. Kafka -> WebSocket latency: produce `--alerts` ReID alerts to `person_reid_alerts` at `--rate`/s
   (aiokafka), each for a new global_id, and time until its `alert.created` arrives on /ws/alerts.
   The path measured: broker -> reid consumer -> PostgreSQL (alert + outbox) -> outbox relay ->
   `vigil.events` -> fan-out consumer -> WebSocket hub -> client.
2. GET /api/v1/people/directory throughput with `--people` people, with the Redis cache and without it
   (a server whose cache computes every time), `--concurrency` clients in an httpx load loop.
The app runs as its own process (uvicorn), the load generator here; both share this machine's CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import websockets
from aiokafka import AIOKafkaProducer

from vigil.core.config import Settings
from vigil.core.devstack import DevStack, free_port
from vigil.core.migrations import upgrade

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-admin-key-0123456789"
HEADERS = {"Authorization": f"Bearer {KEY}"}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


class Server:
    def __init__(self, settings: Settings, data_dir: Path, *, no_cache: bool = False,
                 fetch_wait_ms: int | None = None) -> None:
        self.port = free_port()
        env = os.environ | {
            "DATABASE_URL": settings.database_url or "", "REDIS_URL": settings.redis_url or "",
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
            "VIGIL_QDRANT_PATH": str(data_dir / f"qdrant-{self.port}"), "VIGIL_DATA_DIR": str(data_dir),
            "VIGIL_ADMIN_KEY": KEY, "PORT": str(self.port), "VIGIL_LOG_LEVEL": "WARNING",
        }
        argv = [sys.executable, str(ROOT / "bench" / "_serve.py"), *(["--no-cache"] if no_cache else []),
                *(["--fetch-wait-ms", str(fetch_wait_ms)] if fetch_wait_ms is not None else [])]
        self.proc = subprocess.Popen(argv, env=env, cwd=data_dir)
        self.url = f"http://127.0.0.1:{self.port}"

    async def ready(self) -> None:
        async with httpx.AsyncClient() as c:
            for _ in range(600):
                try:
                    if (await c.get(f"{self.url}/ready")).status_code == 200:
                        await asyncio.sleep(2)  # consumers join their groups
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


async def latency(server: Server, bootstrap: str, n: int, rate: float) -> dict:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    got: dict[int, float] = {}
    hop1: list[float] = []  # produce -> alert row written (server clock; same machine)
    ws_url = server.url.replace("http://", "ws://") + f"/ws/alerts?source=reid&token={KEY}"
    base = int(time.time())  # fresh global_ids: every message opens a new alert
    async with websockets.connect(ws_url, max_queue=None) as ws:

        async def receive() -> None:
            while len(got) < n:
                msg = json.loads(await ws.recv())
                data = msg["data"]["data"]
                if msg["type"] == "alert.created" and data.get("bench_run") == base and "seq" in data:
                    got[data["seq"]] = time.perf_counter() - data["sent_perf"]
                    created = datetime.fromisoformat(msg["data"]["created_at"]).timestamp()
                    hop1.append(created - data["sent_wall"])

        # Warm-up: a server that just started may wait for the group to rebalance (a member that
        # left without a goodbye holds its partitions until its session times out); not measured.
        await producer.send_and_wait("person_reid_alerts", json.dumps(
            {"global_id": base * 1000 - 1, "kind": "bench_warmup", "bench_run": base}).encode())
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if msg["data"]["kind"] == "bench_warmup" and msg["data"]["data"].get("bench_run") == base:
                break

        reader = asyncio.create_task(receive())
        for seq in range(n):
            body = {"global_id": base * 1000 + seq, "zone_id": "ZONE_B", "kind": "bench", "bench_run": base,
                    "seq": seq, "sent_perf": time.perf_counter(), "sent_wall": time.time()}
            await producer.send_and_wait("person_reid_alerts", json.dumps(body).encode())
            await asyncio.sleep(1 / rate)
        try:
            await asyncio.wait_for(reader, 60)
        except TimeoutError:
            reader.cancel()
    await producer.stop()
    ms = [v * 1000 for v in got.values()]
    return {"alerts": n, "received": len(ms), "rate_per_s": rate, "p50_ms": round(pct(ms, 50), 1),
            "p90_ms": round(pct(ms, 90), 1), "p99_ms": round(pct(ms, 99), 1), "max_ms": round(max(ms), 1),
            "mean_ms": round(statistics.fmean(ms), 1),
            "to_alert_row_p50_ms": round(pct([v * 1000 for v in hop1], 50), 1),
            "to_alert_row_p99_ms": round(pct([v * 1000 for v in hop1], 99), 1)}


async def seed_people(url: str, n: int) -> None:
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=30) as c:
        sq = {"type": "Polygon", "coordinates": [[[0, 0], [9, 0], [9, 9], [0, 9], [0, 0]]]}
        await c.post("/api/v1/zones", json={"zone_id": "ZONE_B", "name": "Bench", "geometry": sq})
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            async with sem:
                await c.post("/api/v1/people", json={"global_id": i, "name": f"Person {i}",
                                                     "zone_id": "ZONE_B" if i % 2 else None})

        await asyncio.gather(*(one(i) for i in range(n)))


async def throughput(url: str, seconds: float, concurrency: int) -> dict:
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=30,
                                 limits=httpx.Limits(max_connections=concurrency)) as c:
        await c.get("/api/v1/people/directory")  # warm
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < stop:
                t = time.perf_counter()
                r = await c.get("/api/v1/people/directory")
                r.raise_for_status()
                latencies.append(time.perf_counter() - t)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ms = [v * 1000 for v in latencies]
    return {"requests": len(ms), "req_per_s": round(len(ms) / elapsed, 1), "p50_ms": round(pct(ms, 50), 2),
            "p99_ms": round(pct(ms, 99), 2)}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=300)
    ap.add_argument("--rate", type=float, default=20)
    ap.add_argument("--people", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    results: dict = {"machine": {"cpus": os.cpu_count()}, "args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        data_dir = Path(tmp)
        stack = DevStack(data_dir / "stack", fast=True)
        settings = stack.start(Settings(_env_file=None))
        try:
            await asyncio.to_thread(upgrade, settings.database_url or "")
            server = Server(settings, data_dir)
            try:
                await server.ready()
                await seed_people(server.url, args.people)
                results["directory_cached"] = await throughput(server.url, args.seconds, args.concurrency)
                print("directory, cached:", results["directory_cached"], flush=True)
                results["kafka_to_ws"] = await latency(server, settings.kafka_bootstrap_servers or "",
                                                       args.alerts, args.rate)
                print("kafka -> websocket:", results["kafka_to_ws"], flush=True)
            finally:
                server.stop()
            # The same path with every consumer's fetch_max_wait_ms at 100 ms (the core fan-out one too).
            fast = Server(settings, data_dir, fetch_wait_ms=100)
            try:
                await fast.ready()
                results["kafka_to_ws_fetch_wait_100ms"] = await latency(
                    fast, settings.kafka_bootstrap_servers or "", args.alerts, args.rate)
                print("kafka -> websocket, fetch wait 100 ms (all consumers):",
                      results["kafka_to_ws_fetch_wait_100ms"], flush=True)
            finally:
                fast.stop()
            uncached = Server(settings, data_dir, no_cache=True)
            try:
                await uncached.ready()
                results["directory_uncached"] = await throughput(uncached.url, args.seconds, args.concurrency)
                print("directory, no cache:", results["directory_uncached"], flush=True)
            finally:
                uncached.stop()
        finally:
            stack.stop()
    out = ROOT / "bench" / "results" / "people_reid.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    asyncio.run(main())
