"""Shared bench helpers: an embedded stack plus a real `vigil serve` process, machine facts, percentiles."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from vigil.core import migrations  # noqa: E402
from vigil.core.config import Settings  # noqa: E402
from vigil.core.devstack import DevStack, free_port  # noqa: E402

ADMIN = "bench-admin-key-0123456789"


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0]
    return (f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores ({cpu}), Python "
            f"{platform.python_version()}, load average at start {load:.1f}")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@contextmanager
def running_vigil():
    """Embedded services + `vigil serve` in its own process; yields (base_url, settings)."""
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        stack = DevStack(Path(tmp) / "stack")
        settings = stack.start(Settings(_env_file=None))
        try:
            migrations.upgrade(settings.database_url or "")
            port = free_port()
            env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
                   "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
                   "REDPANDA_BROKERS": settings.redpanda_brokers, "VIGIL_QDRANT_PATH": str(settings.qdrant_path),
                   "VIGIL_DATA_DIR": str(Path(tmp) / "app"), "PORT": str(port), "VIGIL_ADMIN_KEY": ADMIN,
                   "VIGIL_LOG_LEVEL": "WARNING"}
            proc = subprocess.Popen([sys.executable, "-m", "vigil.cli", "serve"], cwd=ROOT, env=env)
            url = f"http://127.0.0.1:{port}"
            try:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("vigil serve did not become ready")
                    time.sleep(0.2)
                time.sleep(1.5)  # consumers join after /ready
                yield url, settings
            finally:
                proc.terminate()
                proc.wait(20)
        finally:
            stack.stop()


def write_results(name: str, text: str) -> None:
    out = ROOT / "bench" / "results" / f"{name}.md"
    with out.open("a") as fh:
        fh.write(text.rstrip() + "\n\n")
    print(text)
