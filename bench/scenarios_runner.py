"""Scenario runner benchmarks: frames/s at 640x480, and dispatch-to-first-prediction latency.

    .venv/bin/python bench/scenarios_runner.py [--frames 60] [--trials 5]

1. Throughput: a 640x480 MJPG video of the astronaut moving across a grey frame is decoded and every
   frame analysed in this process, with each detector alone and with both (what a runner does in
   its worker thread, without the database).
2. Latency: a throwaway embedded stack (PostgreSQL, broker), the app served in this process and one
   `vigil runner` process. Each trial creates a scenario and moves it to `init_startup_processing`;
   latency = the first stored prediction's `created_at` minus the history row of that move (both
   written by the database side, so no polling error), i.e. outbox -> Kafka -> runner -> OpenCV -> insert.

Writes bench/results/scenarios_runner.json and prints a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
warnings.filterwarnings("ignore", module="platformdirs")

from vigil.scenarios.detect import Detectors, VideoSource  # noqa: E402


def make_video(path: Path, frames: int, size: tuple[int, int] = (640, 480), fps: float = 25.0) -> Path:
    from skimage import data

    width, height = size
    face = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (240, 240))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(frames):
        frame = np.full((height, width, 3), 40, np.uint8)
        x = 20 + (i * 6) % (width - 280)
        frame[100:340, x:x + 240] = face
        writer.write(frame)
    writer.release()
    return path


def throughput(video: Path, detectors: list[str]) -> dict:
    source = VideoSource(str(video), sample_fps=1000)
    dets = Detectors(detectors)
    started = time.perf_counter()
    found = 0
    while True:
        batch = source.read_batch(dets, max_frames=16, max_seconds=60)
        found += len(batch.predictions)
        if batch.ended:
            break
    elapsed = time.perf_counter() - started
    source.close()
    return {"detectors": detectors, "frames": source.frames_processed, "seconds": round(elapsed, 3),
            "fps": round(source.frames_processed / elapsed, 2), "detections": found}


async def latency(video: Path, trials: int, workdir: Path) -> dict:
    import httpx
    import uvicorn
    from pydantic import SecretStr
    from sqlalchemy import text

    from vigil.core.config import Settings
    from vigil.core.devstack import DevStack, free_port
    from vigil.core.logging import setup_logging
    from vigil.core.migrations import upgrade
    from vigil.main import create_app

    setup_logging("WARNING")
    stack = DevStack(workdir / "stack", fast=True)
    settings = stack.start(Settings(_env_file=None))
    runner = None
    server_task = None
    try:
        upgrade(settings.database_url or "")
        settings = settings.model_copy(update={"port": free_port(),
                                               "admin_key": SecretStr("bench-admin-key-0123456789"),
                                               "data_dir": workdir / "app", "qdrant_path": workdir / "app" / "q",
                                               "outbox_poll_interval_s": 0.5})
        app = create_app(settings)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_config=None,
                                               lifespan="on"))
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        server_task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        env = {**os.environ, "DATABASE_URL": settings.database_url, "KAFKA_BOOTSTRAP_SERVERS":
               settings.kafka_bootstrap_servers, "VIGIL_LOG_LEVEL": "INFO", "VIGIL_DATA_DIR": str(workdir / "r")}
        log_path = workdir / "runner.log"
        runner = subprocess.Popen([sys.executable, "-m", "vigil.cli", "runner", "--name", "bench"], env=env,
                                  cwd=workdir, stdout=open(log_path, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
        deadline = time.monotonic() + 90
        while "assigned partitions [0, 1, 2]" not in log_path.read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise RuntimeError("the runner never joined its group")
            await asyncio.sleep(0.2)
        results = []
        headers = {"Authorization": "Bearer bench-admin-key-0123456789"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}", headers=headers,
                                     timeout=30) as client:
            for _ in range(trials):
                sid = (await client.post("/api/v1/scenarios", json={"source": str(video),
                                                                      "params": {"sample_fps": 25}})).json()["id"]
                await client.post(f"/api/v1/scenarios/{sid}/status", json={"status": "init_startup_processing"})
                for _ in range(600):
                    body = (await client.get(f"/api/v1/scenarios/{sid}")).json()
                    if (body.get("latest_run") or {}).get("status") in ("completed", "failed"):
                        break
                    await asyncio.sleep(0.1)
                async with app.state.ctx.engine.connect() as conn:
                    row = (await conn.execute(text(
                        "SELECT (SELECT min(created_at) FROM scenario_predictions WHERE scenario_id = :s) - "
                        "(SELECT at FROM scenario_transitions WHERE scenario_id = :s "
                        "AND to_status = 'init_startup_processing')"), {"s": sid})).scalar_one()
                results.append(round(row.total_seconds() * 1000, 1))
        return {"trials_ms": results, "median_ms": statistics.median(results), "min_ms": min(results),
                "max_ms": max(results)}
    finally:
        if runner is not None:
            runner.terminate()
            runner.wait(20)
        if server_task is not None:
            server.should_exit = True
            await asyncio.wait_for(server_task, 30)
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        workdir = Path(tmp)
        video = make_video(workdir / "bench-640x480.avi", args.frames)
        report: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                    "opencv": cv2.__version__, "load_avg": os.getloadavg()},
                        "throughput_640x480": [throughput(video, d)
                                               for d in (["face"], ["person"], ["face", "person"])]}
        if not args.skip_latency:
            short = make_video(workdir / "bench-short.avi", 10)
            report["dispatch_to_first_prediction"] = asyncio.run(latency(short, args.trials, workdir))
    out = ROOT / "bench" / "results" / "scenarios_runner.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
