"""Alert stream load: ReID alerts produced to Kafka at a rate, received on N `/ws/alerts` dashboards.

    .venv/bin/python bench/alerts_ws.py [--seconds 10] [--scenario 10x500 --scenario 100x50 ...]

Each scenario `CxR` opens C websocket clients on /ws/alerts?source=reid, then produces R alerts/s for
`--seconds` (each alert a new global_id, so each is an `alert.created`). Latency is produce -> frame:
the producer's wall clock in the record, the client's wall clock when the frame arrives (same machine).
The path: broker -> reid consumer -> PostgreSQL (alert + outbox) -> relay -> `vigil.events` ->
fan-out consumer -> hub -> every client. Reports p50/p90/p99/max over every (client, alert) pair and
how many frames were lost. The app runs as its own process; this load generator shares the CPUs.

Writes bench/results/alerts_ws.json (or --out) and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import psutil
import websockets
from aiokafka import AIOKafkaProducer
from common import ROOT, machine, pct  # common puts src/ on sys.path

from vigil.core.config import Settings
from vigil.core.devstack import DevStack, free_port
from vigil.core.migrations import upgrade

KEY = "bench-admin-key-0123456789"
TOPIC = "person_reid_alerts"


class Server:
    def __init__(self, settings: Settings, data_dir: Path, serve_args: list[str] | None = None) -> None:
        self.port = free_port()
        env = os.environ | {
            "DATABASE_URL": settings.database_url or "", "REDIS_URL": settings.redis_url or "",
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
            "VIGIL_QDRANT_PATH": str(data_dir / f"qdrant-{self.port}"), "VIGIL_DATA_DIR": str(data_dir),
            "VIGIL_ADMIN_KEY": KEY, "PORT": str(self.port), "VIGIL_LOG_LEVEL": "WARNING",
            "VIGIL_WS_QUEUE_SIZE": "100000",  # measure latency, not the slow-client cut-off
        }
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "_serve.py"), *(serve_args or [])],
                                     env=env, cwd=data_dir)
        self.url = f"http://127.0.0.1:{self.port}"

    async def ready(self) -> None:
        async with httpx.AsyncClient() as c:
            for _ in range(900):
                try:
                    if (await c.get(f"{self.url}/ready")).status_code == 200:
                        await asyncio.sleep(2)
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used: the cost of the work, whatever the machine's load."""
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


async def fanout_via(server: Server) -> dict[str, float]:
    """How many vigil.events records the hub took straight from the relay, and how many from its consumer."""
    async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": KEY}, timeout=30) as c:
        text = (await c.get("/metrics")).text
    via = {}
    for line in text.splitlines():
        if line.startswith("vigil_ws_fanout_records_total{"):
            labels, value = line.rsplit(" ", 1)
            via[labels.split('via="', 1)[1].split('"', 1)[0]] = float(value)
    return via


async def scenario(server: Server, bootstrap: str, clients: int, rate: float, seconds: float) -> dict:
    n = int(rate * seconds)
    run = int(time.time() * 1000)
    url = server.url.replace("http://", "ws://") + f"/ws/alerts?source=reid&token={KEY}"
    latencies: list[list[float]] = [[] for _ in range(clients)]
    stored_ms: list[float] = []  # produce -> the alert row's created_at (the app's clock), from client 0
    warm = [asyncio.Event() for _ in range(clients)]
    sockets = [await websockets.connect(url, max_queue=None, open_timeout=30) for _ in range(clients)]
    done = asyncio.Event()

    async def receive(i: int, ws) -> None:
        mine = latencies[i]
        try:
            async for raw in ws:
                now = time.time()
                msg = json.loads(raw)
                data = msg["data"]["data"]
                if data.get("bench_run") != run:
                    continue
                if msg["data"]["kind"] == "bench_warmup":
                    warm[i].set()
                elif msg["type"] == "alert.created":
                    mine.append((now - data["sent_wall"]) * 1000)
                    if i == 0:
                        created = datetime.fromisoformat(msg["data"]["created_at"]).timestamp()
                        stored_ms.append((created - data["sent_wall"]) * 1000)
                    if len(mine) >= n:
                        return
        except websockets.ConnectionClosed:
            return

    readers = [asyncio.create_task(receive(i, ws)) for i, ws in enumerate(sockets)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1)
    await producer.start()
    try:
        # Warm-up (not measured): every client sees one alert, so the consumers are assigned and running.
        await producer.send_and_wait(TOPIC, json.dumps(
            {"global_id": 1, "kind": "bench_warmup", "bench_run": run}).encode())
        await asyncio.wait_for(asyncio.gather(*(w.wait() for w in warm)), 90)
        loop = asyncio.get_running_loop()
        start = loop.time()
        via0 = await fanout_via(server)
        server_cpu0, bench_cpu0 = cpu_s(server.proc.pid), cpu_s(os.getpid())
        pending = []
        for seq in range(n):
            due = start + seq / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            body = {"global_id": 10_000_000 + seq, "kind": f"bench_{run}", "zone_id": "Z1", "bench_run": run,
                    "seq": seq, "sent_wall": time.time()}
            pending.append(await producer.send(TOPIC, json.dumps(body).encode(), key=str(seq).encode()))
        await asyncio.gather(*pending)
        produce_s = loop.time() - start
        try:
            await asyncio.wait_for(asyncio.gather(*readers), 60)
        except TimeoutError:
            pass
        server_cpu, bench_cpu = cpu_s(server.proc.pid) - server_cpu0, cpu_s(os.getpid()) - bench_cpu0
        done.set()
    finally:
        for r in readers:
            r.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await producer.stop()
        for ws in sockets:
            await ws.close()
    stored = await drain(server, f"bench_{run}", n)
    via = {k: v - via0.get(k, 0) for k, v in (await fanout_via(server)).items()}
    flat = [v for per in latencies for v in per]
    expected = n * clients
    return {
        "clients": clients, "rate_per_s": rate, "alerts": n, "produce_s": round(produce_s, 2),
        "alerts_stored": stored, "frames_expected": expected,
        # CPU the app process spent while this scenario's frames were produced and delivered (until
        # every client had its frames or 60 s passed): comparable across runs on a loaded machine.
        "server_cpu_s": round(server_cpu, 2),
        "server_cpu_ms_per_frame": round(server_cpu * 1000 / max(len(flat), 1), 3),
        "bench_cpu_s": round(bench_cpu, 2), "frames_received": len(flat), "lost": expected - len(flat),
        "p50_ms": round(pct(flat, 50), 1) if flat else None, "p90_ms": round(pct(flat, 90), 1) if flat else None,
        "p99_ms": round(pct(flat, 99), 1) if flat else None, "max_ms": round(max(flat), 1) if flat else None,
        # Where the time goes: produce -> stored (broker, reid consumer, commit) and the rest of the way
        # (outbox relay, vigil.events, fan-out, hub, socket), from client 0's frames.
        "stored_p50_ms": round(pct(stored_ms, 50), 1) if stored_ms else None,
        "stored_p99_ms": round(pct(stored_ms, 99), 1) if stored_ms else None,
        # vigil.events records the hub took straight from this process's relay / read back by its consumer
        # (absent before the hub counted them).
        "fanout_via": via,
    }


async def drain(server: Server, kind: str, n: int, timeout_s: float = 240) -> int:
    """Wait until every alert of this scenario is stored, so the next one starts with no backlog."""
    async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": KEY}, timeout=30) as c:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        total = 0
        while loop.time() < deadline:
            total = (await c.get("/api/v1/alerts", params={"kind": kind, "limit": 1})).json()["total"]
            if total >= n:
                break
            await asyncio.sleep(1)
        return total


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--scenario", action="append", help="CLIENTSxRATE, e.g. 10x500 (repeatable)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "alerts_ws.json"))
    parser.add_argument("--label", default="", help="a note saved with the results (e.g. 'before')")
    parser.add_argument("--deflate", action="store_true",
                        help="serve with permessage-deflate (VIGIL_WS_DEFLATE=true; off by default, as shipped)")
    parser.add_argument("--fetch-wait-ms", type=int, default=None,
                        help="fetch_max_wait_ms for every consumer (default: as shipped)")
    args = parser.parse_args()
    scenarios = [tuple(map(float, s.split("x"))) for s in (args.scenario or ["100x50", "10x500", "50x300"])]
    results: dict = {"machine": machine(), "label": args.label, "seconds": args.seconds,
                     "deflate": args.deflate, "fetch_wait_ms": args.fetch_wait_ms, "scenarios": []}
    with tempfile.TemporaryDirectory(prefix="vigil-bench-ws-") as tmp:
        stack = DevStack(Path(tmp) / "stack")
        settings = stack.start(Settings(_env_file=None))
        server = None
        try:
            upgrade(settings.database_url or "")
            serve_args = ["--deflate"] if args.deflate else []
            if args.fetch_wait_ms is not None:
                serve_args += ["--fetch-wait-ms", str(args.fetch_wait_ms)]
            server = Server(settings, Path(tmp), serve_args)
            await server.ready()
            for clients, rate in scenarios:
                r = await scenario(server, settings.kafka_bootstrap_servers or "", int(clients), rate, args.seconds)
                r["load_average_after"] = round(os.getloadavg()[0], 2)
                print(json.dumps(r), flush=True)
                results["scenarios"].append(r)
                await asyncio.sleep(2)
        finally:
            if server is not None:
                server.stop()
            stack.stop()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
