"""Test helpers: tiny videos made with OpenCV, `vigil runner` processes, polling the API."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from tests.instances import terminate

API = "/api/v1/scenarios"
ROOT = Path(__file__).resolve().parents[2]


def make_video(path: Path, *, frames: int = 6, fps: float = 10.0, size: tuple[int, int] = (320, 240)) -> Path:
    """The astronaut (a face, a person) pasted into grey frames, moving right a little each frame."""
    width, height = size
    face = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (200, 200))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        frame = np.full((height, width, 3), 40, np.uint8)
        x = 10 + (i * 10) % max(1, width - 220)
        frame[20:220, x:x + 200] = face
        writer.write(frame)
    writer.release()
    return path


class RunnerProcess:
    """One `vigil runner` subprocess with its own log file."""

    def __init__(self, name: str, settings, workdir: Path, *args: str, **env: str) -> None:
        self.name = name
        self.log_path = workdir / f"runner-{name}.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
        environ.update({
            "DATABASE_URL": settings.database_url, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "REDPANDA_BROKERS": settings.redpanda_brokers or settings.kafka_bootstrap_servers,
            "VIGIL_DATA_DIR": str(workdir / "data"), "VIGIL_LOG_LEVEL": "INFO",
            "VIGIL_SCENARIO_STALE_RUN_S": "2", "VIGIL_SCENARIO_BATCH_FRAMES": "4",
            "VIGIL_OUTBOX_POLL_INTERVAL_S": "0.2", "VIGIL_MEDIA_ROOT": str(settings.media_dir), **env,
        })
        log = open(self.log_path, "ab")  # noqa: SIM115
        # cwd outside the repo: no developer's .env is read.
        self.proc = subprocess.Popen([sys.executable, "-m", "vigil.cli", "runner", "--name", name, *args], cwd=workdir,
                                     env=environ, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assignments(self) -> list[list[int]]:
        return [[int(p) for p in re.findall(r"\d+", m)]
                for m in re.findall(r"assigned partitions \[([\d, ]*)\]", self.log())]

    def wait_assigned(self, timeout: float = 60, exclude: list[int] | None = None) -> list[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"runner {self.name} exited:\n{self.log()[-3000:]}"
            got = self.assignments()
            if got and got[-1] and got[-1] != exclude:
                return got[-1]
            time.sleep(0.2)
        raise AssertionError(f"runner {self.name} got no partitions:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout: float = 20) -> None:
        terminate(self.proc, timeout)


async def wait_for(fetch, predicate, timeout: float = 60.0, interval: float = 0.2):
    """Poll `await fetch()` until `predicate(value)`; return the value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    value = None
    while loop.time() < deadline:
        value = await fetch()
        if predicate(value):
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met in {timeout}s; last value: {value}")


async def scenario(client, sid: str) -> dict:
    r = await client.get(f"{API}/{sid}")
    assert r.status_code == 200, r.text
    return r.json()


async def start_scenario(client, source: str, **params) -> str:
    r = await client.post(API, json={"source": source, "params": params})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    r = await client.post(f"{API}/{sid}/status", json={"status": "init_startup_processing"})
    assert r.status_code == 200, r.text
    return sid


def run_done(body: dict) -> bool:
    run = body.get("latest_run") or {}
    return run.get("status") in ("completed", "failed", "stopped", "cancelled")
