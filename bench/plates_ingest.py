"""Plate ingest throughput: multipart events with two ~100 KB JPEGs each, against `vigil dev`.

    .venv/bin/python bench/plates_ingest.py [--events 400] [--concurrency 8]

Starts `vigil dev` on embedded services in a temporary data dir (loopback only), creates a camera, posts
the events with N concurrent clients, and prints events/s plus latency percentiles; the result is also
written to bench/results/plates_ingest.json. Bounded in count and time; stops what it started.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import psutil
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "bench-admin-key-0123456789"


def noise_jpeg(side: int, seed: int) -> bytes:
    """Noise does not compress, so the size is predictable from the side."""
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side * 4 // 3, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def side_for(size_bytes: int) -> int:
    side = 64
    while len(noise_jpeg(side, 0)) < size_bytes:
        side += 8
    return side


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"vigil dev exited with {proc.returncode}")
            try:
                if (await client.get(f"{url}/ready")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise SystemExit("vigil dev did not become ready")


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds used so far by a process tree, per process name (app, postgres, valkey, broker...)."""
    out: dict[str, float] = {}
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            name = "vigil app" if proc.pid == pid else proc.name()
            out[name] = out.get(name, 0.0) + times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return out


async def run(events: int, concurrency: int, url: str, pid: int) -> dict:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    # Distinct images per event (content-addressed storage would dedupe repeats and flatter the numbers).
    side = side_for(100_000)
    pool = [(noise_jpeg(side, 2 * i + 1), noise_jpeg(side, 2 * i + 2)) for i in range(events)]
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        cam = (
            await client.post(
                "/api/v1/cameras",
                json={
                    "name": "bench",
                    "rtsp_url": "rtsp://10.0.0.1/s",
                    "fps": 10,
                    "width": 1920,
                    "height": 1080,
                },
            )
        ).json()["id"]
        latencies: list[float] = []
        errors = 0
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(events):
            queue.put_nowait(i)

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                i = queue.get_nowait()
                frame, crop = pool[i]
                event = {
                    "event_uid": f"bench-{i}",
                    "camera_id": cam,
                    "plate": f"BN{i:05d}",
                    "confidence": 0.9,
                    "captured_at": datetime.now(UTC).isoformat(),
                }
                files = {
                    "event": (None, json.dumps(event), "application/json"),
                    "frame": ("frame.jpg", frame, "image/jpeg"),
                    "crop": ("crop.jpg", crop, "image/jpeg"),
                }
                started = time.perf_counter()
                r = await client.post("/api/v1/plates/events", files=files)
                latencies.append(time.perf_counter() - started)
                if r.status_code != 201:
                    errors += 1

        cpu_before, own_before = cpu_seconds(pid), time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu_after, own_after = cpu_seconds(pid), time.process_time()
    latencies.sort()
    return {
        "events": events,
        "concurrency": concurrency,
        "errors": errors,
        "image_bytes": [len(pool[0][0]), len(pool[0][1])],
        "elapsed_s": round(elapsed, 2),
        "events_per_s": round(events / elapsed, 1),
        "latency_ms": {
            "p50": round(statistics.median(latencies) * 1000, 1),
            "p95": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1),
            "max": round(latencies[-1] * 1000, 1),
        },
        "cpu_count": os.cpu_count(),
        # Share of one core each process used during the run (2.0 = both cores of this machine).
        "cores_used": {
            name: round((cpu_after.get(name, 0) - before) / elapsed, 2) for name, before in cpu_before.items()
        }
        | {"load generator": round((own_after - own_before) / elapsed, 2)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if k
            not in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "REDPANDA_BROKERS", "QDRANT_URL")
        }
        env.update(
            {
                "VIGIL_DATA_DIR": tmp,
                "PORT": str(port),
                "HOST": "127.0.0.1",
                "VIGIL_ADMIN_KEY": ADMIN,
                "VIGIL_LOG_LEVEL": "WARNING",
                "VIGIL_DEV_RUNNERS": "0",
            }
        )
        with open(Path(tmp) / "dev.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "vigil.cli", "dev"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                url = f"http://127.0.0.1:{port}"
                asyncio.run(wait_ready(url, proc))
                result = asyncio.run(run(args.events, args.concurrency, url, proc.pid))
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "plates_ingest.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
