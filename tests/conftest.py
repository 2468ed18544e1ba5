"""Test fixtures: the real embedded services once per session, a real server, a clean state per test."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import tempfile
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import uvicorn
from pydantic import SecretStr
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.instances import serve_stack  # noqa: F401 - the fixture of tests that start `vigil serve` processes
from vigil.core.config import Settings
from vigil.core.devstack import DevStack, ensure_database, free_port
from vigil.core.logging import setup_logging
from vigil.core.migrations import upgrade

warnings.filterwarnings("ignore", module="platformdirs")
ADMIN_KEY = "test-admin-key-0123456789"


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="vigil-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def stack(data_dir: Path) -> Iterator[DevStack]:
    """Embedded PostgreSQL, Valkey, broker and S3 (moto) for the whole session (URLs in the env replace them)."""
    setup_logging(os.environ.get("VIGIL_TEST_LOG_LEVEL", "WARNING"))
    ds = DevStack(data_dir / "stack", fast=True, s3=True)
    ds.settings = ds.start(Settings(_env_file=None))  # type: ignore[attr-defined]
    try:
        yield ds
    finally:
        ds.stop()


@pytest.fixture(scope="session")
def base_settings(stack: DevStack, data_dir: Path) -> Settings:
    """Settings of the test app: a fresh migrated database, the stack's services, an admin key."""
    s: Settings = stack.settings  # type: ignore[attr-defined]
    if "postgres" in stack.processes:
        port = stack.processes["postgres"].port
        ensure_database(port, "vigil_test", drop_first=True)
        s = s.model_copy(update={"database_url": f"postgresql+asyncpg://postgres@127.0.0.1:{port}/vigil_test"})
    upgrade(s.database_url or "")
    # The S3 server is there for the tests that ask for it (`s3_settings`, `blob_backend`); the
    # shared test app keeps blobs in its local directory, as `make run` does.
    return s.model_copy(update={
        "s3_bucket": None,
        "data_dir": data_dir / "app",
        "qdrant_path": data_dir / "app" / "qdrant",
        "admin_key": SecretStr(ADMIN_KEY),
        "outbox_poll_interval_s": 0.2,
        "ws_queue_size": 64,
        "consumer_retry_backoff_s": 0.01,
        "exporter_allowed_hosts": "127.0.0.1",  # the tests' webhook receivers and brokers
        "scenario_allowed_hosts": "10.0.0.5",  # one test camera on a private network (the console's)
        "exporter_poll_interval_s": 0.2,
        "scenario_retry_backoff_s": 0.1,
        "scenario_stale_run_s": 3.0,  # the app's stale-run sweeper: runners' heartbeats go every second
        "assets_debounce_s": 0.2,
        "assets_rules_interval_s": 1.0,
        "alert_policy_interval_s": 0.2,  # escalations, reminders, quiet resolve: seconds, not minutes
        "telegram_api_base": f"http://127.0.0.1:{free_port()}/telegram",  # tests/exporters/test_channels.py
        "port": free_port(),
    })


@pytest.fixture(scope="session")
def s3_settings(stack: DevStack) -> Settings:
    """The S3_* settings of the session's S3 server (moto), bucket created."""
    s: Settings = stack.settings  # type: ignore[attr-defined]
    assert s.s3_bucket, "the test stack starts an S3 server"
    return s


class RunningServer:
    def __init__(self, app, server: uvicorn.Server, url: str) -> None:
        self.app = app
        self.server = server
        self.url = url

    @property
    def ctx(self):
        return self.app.state.ctx

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")


async def start_server(settings: Settings) -> tuple[RunningServer, asyncio.Task]:
    from vigil.main import create_app

    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_config=None, access_log=False,
                            lifespan="on", ws="websockets-sansio", ws_per_message_deflate=settings.ws_deflate)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    for _ in range(400):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.025)
    await asyncio.wait_for(app.state.runtime.consumers_started.wait(), 30)
    return RunningServer(app, server, f"http://127.0.0.1:{settings.port}"), task


async def stop_server(server: RunningServer, task: asyncio.Task) -> None:
    server.server.should_exit = True
    await asyncio.wait_for(task, 30)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def server(base_settings: Settings) -> AsyncIterator[RunningServer]:
    running, task = await start_server(base_settings)
    try:
        yield running
    finally:
        await stop_server(running, task)


TABLES_SQL = """
SELECT string_agg(format('%I', tablename), ', ') FROM pg_tables
WHERE schemaname = 'public' AND tablename <> 'alembic_version'
"""


@pytest_asyncio.fixture(loop_scope="session", autouse=True)
async def clean_state(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Every test that touches the server starts from empty tables and an empty cache."""
    if "server" not in request.fixturenames:
        yield
        return
    srv: RunningServer = request.getfixturevalue("server")
    # The server's background loops (rule checks, estimation, delivery, jobs) keep touching tables, so
    # the TRUNCATE can deadlock with them or wait on their locks: bound the wait and try again.
    for attempt in range(10):
        try:
            async with srv.ctx.engine.begin() as conn:
                await conn.execute(text("SET LOCAL lock_timeout = '2s'"))
                tables = await conn.scalar(text(TABLES_SQL))
                if tables:
                    await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            break
        except DBAPIError as exc:
            transient = "deadlock" in str(exc) or "lock timeout" in str(exc)
            if not transient or attempt == 9:
                raise
            await asyncio.sleep(0.05 * (attempt + 1) + random.random() * 0.1)
    for attempt in range(5):  # a connection a restarted or frozen Valkey dropped is replaced on retry
        try:
            await srv.ctx.redis.flushdb()
            break
        except RedisConnectionError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
    yield


@pytest.fixture(params=["local", "s3"])
def blob_backend(request: pytest.FixtureRequest, server: RunningServer, s3_settings: Settings):
    """Run the test once on each blob backend: the running server's store is swapped for the test."""
    from vigil.core.storage import open_blob_store

    before = server.ctx.storage
    if request.param == "s3":
        server.ctx.storage = open_blob_store(server.app.state.settings.model_copy(update={
            k: getattr(s3_settings, k) for k in
            ("s3_bucket", "s3_endpoint_url", "s3_access_key_id", "s3_secret_access_key", "s3_region")
        }))
    try:
        yield server.ctx.storage
    finally:
        server.ctx.storage = before


@pytest.fixture
def presign(server: RunningServer):
    """Turn VIGIL_BLOB_PRESIGN on for one test."""
    before = server.app.state.settings
    server.app.state.settings = before.model_copy(update={"blob_presign": True, "blob_presign_ttl_s": 60})
    try:
        yield
    finally:
        server.app.state.settings = before


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest_asyncio.fixture(loop_scope="session")
async def client(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client of the running server."""
    async with httpx.AsyncClient(base_url=server.url, headers=auth(ADMIN_KEY), timeout=20) as c:
        yield c


@pytest_asyncio.fixture(loop_scope="session")
async def anon(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client without credentials."""
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as c:
        yield c


@pytest_asyncio.fixture(loop_scope="session")
async def make_key(client: httpx.AsyncClient):
    """Create an API key with the given scopes; returns the secret."""

    async def make(*scopes: str, name: str = "test") -> str:
        r = await client.post("/api/v1/auth/keys", json={"name": name, "scopes": list(scopes)})
        assert r.status_code == 201, r.text
        return r.json()["key"]

    return make
