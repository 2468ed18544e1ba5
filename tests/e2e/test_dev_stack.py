"""`vigil dev` (what `make run` runs) as a newcomer would use it: a real process on a fresh data dir."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from vigil.core.devstack import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "e2e-admin-key-0123456789"


def start(data_dir: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "REDPANDA_BROKERS", "QDRANT_URL")}
    env.update({"VIGIL_DATA_DIR": str(data_dir), "PORT": str(port), "HOST": "127.0.0.1", "VIGIL_ADMIN_KEY": ADMIN,
                "VIGIL_LOG_LEVEL": "INFO"})
    log = open(data_dir.parent / f"dev-{port}.log", "ab")  # noqa: SIM115
    return subprocess.Popen([sys.executable, "-m", "vigil.cli", "dev"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def wait_ready(proc: subprocess.Popen, url: str, timeout: float = 90) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        assert proc.poll() is None, f"vigil dev exited with {proc.returncode}"
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("vigil dev never became ready")


def stop(proc: subprocess.Popen, sig: int, pids: list[int], timeout: float = 20) -> float:
    started = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout)
    deadline = time.monotonic() + timeout
    while any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids):
        assert time.monotonic() < deadline, "children still running after stop"
        time.sleep(0.1)
    return time.monotonic() - started


def test_dev_serves_writes_devstack_and_stops_everything(tmp_path):
    data_dir = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(data_dir, port)
    try:
        wait_ready(proc, url)
        info = json.loads((data_dir / "devstack.json").read_text())
        assert {"database_url", "redis_url", "kafka_bootstrap_servers", "redpanda_brokers", "qdrant"} <= set(info)
        health = httpx.get(f"{url}/health").json()
        for dep in ("database", "redis", "kafka", "redpanda", "qdrant", "storage"):
            assert health["checks"][dep]["status"] == "ok", (dep, health)
        # The CLI finds the dev database through devstack.json.
        env = {**os.environ, "VIGIL_DATA_DIR": str(data_dir)}
        env.pop("DATABASE_URL", None)
        out = subprocess.run([sys.executable, "-m", "vigil.cli", "create-key", "--name", "cli", "--scopes", "read"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        key = out.stdout.strip().splitlines()[-1]
        assert httpx.get(f"{url}/api/v1/cache/stats", headers={"X-API-Key": key}).status_code == 200
        # `make run` starts one scenario runner (VIGIL_DEV_RUNNERS) beside the services.
        assert psutil.pid_exists(info["pids"]["runner-1"]) and "runner-2" not in info["pids"]
        pids = [*info["pids"].values(), proc.pid]
        took = stop(proc, signal.SIGTERM, pids)
        assert took < 20
    finally:
        if proc.poll() is None:
            proc.kill()

    # Data survives a restart; Ctrl-C (SIGINT) stops it just as well.
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(data_dir, port)
    try:
        wait_ready(proc, url)
        assert httpx.get(f"{url}/api/v1/cache/stats", headers={"X-API-Key": key}).status_code == 200
        info = json.loads((data_dir / "devstack.json").read_text())
        stop(proc, signal.SIGINT, [*info["pids"].values(), proc.pid])
    finally:
        if proc.poll() is None:
            proc.kill()
