"""`vigil serve` as a subprocess on a stack of its own: the tests that run several instances, or kill one."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from vigil.core.devstack import ensure_database, free_port, start_broker
from vigil.core.migrations import upgrade

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "serve-instances-admin-key-0123"
H = {"Authorization": f"Bearer {ADMIN}"}
RULES_INTERVAL_S = 1.0


def terminate(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM, wait up to `timeout` for a clean exit, then SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class Instance:
    def __init__(self, name: str, env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"serve-{name}.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "S3_"))}
        environ.update(env, PORT=str(self.port), VIGIL_INSTANCE_ID=name, VIGIL_DATA_DIR=str(workdir / name))
        log = open(self.log_path, "ab")  # noqa: SIM115
        # cwd outside the repo: no developer's .env is read.
        self.proc = subprocess.Popen([sys.executable, "-m", "vigil.cli", "serve"], cwd=workdir, env=environ,
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=3) as c:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, f"{self.name} exited:\n{self.log()[-3000:]}"
                try:
                    if (await c.get(f"{self.url}/ready")).status_code == 200 and "consumers running" in self.log():
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"{self.name} never became ready:\n{self.log()[-3000:]}")

    def stop(self, timeout: float = 30) -> None:
        terminate(self.proc, timeout)


async def eventually(probe, timeout: float = 60.0, interval: float = 0.2, what: object = ""):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s: {what() if callable(what) else what}")
        await asyncio.sleep(interval)


@pytest.fixture
def serve_stack(stack, s3_settings, tmp_path):
    """A database, Redis db, Kafka broker and bucket for `vigil serve` processes a test starts (Instance)."""
    if "postgres" not in stack.processes:
        pytest.skip("needs the embedded PostgreSQL to create a database of its own")
    pg_port = stack.processes["postgres"].port
    ensure_database(pg_port, "vigil_two", drop_first=True)
    db = f"postgresql+asyncpg://postgres@127.0.0.1:{pg_port}/vigil_two"
    upgrade(db)
    broker, kafka = start_broker(tmp_path)
    bucket = "vigil-two"
    # S310: the session's loopback moto server
    req = urllib.request.Request(f"{s3_settings.s3_endpoint_url}/{bucket}", method="PUT")  # noqa: S310
    urllib.request.urlopen(req, timeout=10).read()  # noqa: S310
    redis = (s3_settings.redis_url or "").rsplit("/", 1)[0] + "/3"
    media_dir = Path(tempfile.mkdtemp(prefix="vigil-two-media-"))
    env = {
        "DATABASE_URL": db, "REDIS_URL": redis, "KAFKA_BOOTSTRAP_SERVERS": kafka, "REDPANDA_BROKERS": kafka,
        "S3_ENDPOINT_URL": s3_settings.s3_endpoint_url or "", "S3_BUCKET": bucket,
        "S3_ACCESS_KEY_ID": s3_settings.s3_access_key_id or "",
        "S3_SECRET_ACCESS_KEY": s3_settings.s3_secret_access_key.get_secret_value(),
        "VIGIL_GALLERY_BACKEND": "pgvector", "VIGIL_ADMIN_KEY": ADMIN, "VIGIL_LOG_LEVEL": "INFO",
        "VIGIL_EXPORTER_ALLOWED_HOSTS": "127.0.0.1", "VIGIL_EXPORTER_POLL_INTERVAL_S": "0.2",
        "VIGIL_OUTBOX_POLL_INTERVAL_S": "0.2", "VIGIL_ASSETS_RULES_INTERVAL_S": str(RULES_INTERVAL_S),
        "VIGIL_MEDIA_ROOT": str(media_dir),  # file sources only under it (issue 12), for apps and runner alike
    }
    try:
        yield SimpleNamespace(env=env, database_url=db, kafka_bootstrap_servers=kafka, redpanda_brokers=kafka,
                              media_dir=media_dir)
    finally:
        broker.stop()
