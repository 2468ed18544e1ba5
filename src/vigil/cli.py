"""The `vigil` command: dev, serve, migrate, runner, seed, create-key, dlq.

Each subcommand imports what it needs when it runs, not at the top, so `vigil migrate`, `vigil runner` or
`vigil create-key` start without loading the whole app (every router, the face encoder's stack, uvicorn).
None of these imports dodges a cycle.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loguru import logger
from pydantic import AliasChoices

from vigil.core.config import Settings, get_settings
from vigil.core.logging import setup_logging

if TYPE_CHECKING:
    from vigil.core.devstack import DevStack


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def uvicorn_config(settings: Settings):  # uvicorn is imported lazily
    """The uvicorn Config `vigil serve` runs: one app instance, or `settings.workers` processes on one port.

    With several workers each process builds its own full app (lifespan, consumers, relay, WebSocket hub)
    from the environment, which `export_settings` has filled in.
    """
    import uvicorn

    options: dict[str, Any] = {"host": settings.host, "port": settings.port, "log_config": None, "access_log": False,
               "proxy_headers": True, "lifespan": "on", "timeout_graceful_shutdown": 10, "ws": "websockets-sansio",
               "ws_per_message_deflate": settings.ws_deflate}
    if settings.workers > 1:
        return uvicorn.Config("vigil.main:app_from_environment", factory=True, workers=settings.workers,
                              **options)
    from vigil.main import create_app

    return uvicorn.Config(create_app(settings), **options)


def export_settings(settings: Settings) -> None:
    """Put every setting that differs from the environment's into it, for worker processes to read."""
    import os

    defaults = Settings(_env_file=None)
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if value is None or value == getattr(defaults, name):
            continue
        alias = field.validation_alias  # every setting has AliasChoices(ENV_NAME, field_name)
        if not isinstance(alias, AliasChoices):
            raise AssertionError(f"setting {name} has no environment alias")
        env_name = next(c for c in alias.choices if isinstance(c, str) and c.isupper())
        os.environ[env_name] = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)


def _serve(settings: Settings) -> None:
    """Serve the app with uvicorn until SIGINT/SIGTERM; the lifespan drains everything it started."""
    import uvicorn

    config = uvicorn_config(settings)
    if settings.workers > 1:
        export_settings(settings)
        logger.info("serving with {} worker processes on {}:{}", settings.workers, settings.host, settings.port)
        from uvicorn.supervisors import Multiprocess

        sock = config.bind_socket()
        try:
            Multiprocess(config, sockets=[sock]).run()
        finally:
            sock.close()
        return
    uvicorn.Server(config).run()


def _start_runners(stack: DevStack, settings: Settings) -> None:
    """Start VIGIL_DEV_RUNNERS `vigil runner` processes on the stack's services; the stack stops them first."""
    import os

    from vigil.core.devstack import ServiceProcess

    env = {**os.environ}
    for name, value in (("DATABASE_URL", settings.database_url), ("REDIS_URL", settings.redis_url),
                        ("KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers),
                        ("REDPANDA_BROKERS", settings.redpanda_brokers)):
        if value:
            env[name] = value
    if settings.runner_source:  # from .env too: the runners' default source for source-less scenarios
        env["VIGIL_RUNNER_SOURCE"] = settings.runner_source
    for i in range(1, settings.dev_runners + 1):
        runner = ServiceProcess(
            f"runner-{i}", [sys.executable, "-m", "vigil.cli", "runner", "--name", f"dev-runner-{i}"], 0,
            settings.data_dir.resolve() / "logs" / f"runner-{i}.log", env=env,
        )
        runner.start(ready=lambda: True)  # it joins the consumer group on its own time
        stack.processes[runner.name] = runner
    stack.write_file(settings)


def cmd_dev(args: argparse.Namespace) -> int:
    """Start the embedded services that the environment does not name, migrate, and serve."""
    from vigil.core.devstack import DevStack
    from vigil.core.migrations import upgrade

    settings = get_settings()
    # SIGTERM behaves like Ctrl-C: uvicorn drains, then the `finally` below stops every child.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    started = time.monotonic()
    stack = DevStack(settings.data_dir)
    try:
        resolved = stack.start(settings)
        upgrade(resolved.database_url or "")
        _start_runners(stack, resolved)
        logger.info("dev stack ready in {:.1f}s; serving on http://{}:{} (data in {})",
                    time.monotonic() - started, resolved.host, resolved.port, settings.data_dir)
        _serve(resolved)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        logger.info("dev stack stopped")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve against the services named in the environment (production)."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    settings = get_settings()
    if args.workers:
        settings = settings.model_copy(update={"workers": max(1, args.workers)})
    try:
        _serve(settings)
    except KeyboardInterrupt:
        pass
    return 0


def cmd_runner(args: argparse.Namespace) -> int:
    """Process scenario jobs from Kafka until SIGINT/SIGTERM."""
    from vigil.scenarios.runner import run_runner

    settings = get_settings().with_devstack()
    if not settings.database_url or not settings.kafka_bootstrap_servers:
        print("error: set DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS, or start the dev stack (`make run`) first",
              file=sys.stderr)
        return 2
    if args.source:
        settings = settings.model_copy(update={"runner_source": args.source})
    asyncio.run(run_runner(settings, name=args.name))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from vigil.core import migrations

    url = migrations.resolve_database_url()
    if args.action == "upgrade":
        migrations.upgrade(url, args.revision or "head")
    elif args.action == "downgrade":
        migrations.downgrade(url, args.revision or "-1")
    else:
        migrations.check(url)
    logger.info("migrate {} done", args.action)
    return 0


def cmd_create_key(args: argparse.Namespace) -> int:
    from vigil.core.db import create_engine, create_sessionmaker, session_scope
    from vigil.core.migrations import resolve_database_url
    from vigil.core.security import SCOPES, create_key

    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    unknown = sorted(set(scopes) - set(SCOPES))
    if not scopes or unknown:
        print(f"error: scopes must be a comma-separated subset of {','.join(SCOPES)}", file=sys.stderr)
        return 2

    async def run() -> str:
        engine = create_engine(resolve_database_url())
        try:
            async with session_scope(create_sessionmaker(engine)) as session:
                row, key = await create_key(session, name=args.name, scopes=scopes)
                logger.info("created key {} ({}) with scopes {}", row.id, row.name, ",".join(row.scopes))
                return key
        finally:
            await engine.dispose()

    print(asyncio.run(run()))
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    """Load the demo cameras, zones, people and alerts (idempotent)."""
    from vigil.core.cache import Cache, create_redis
    from vigil.core.db import create_engine, create_sessionmaker
    from vigil.core.migrations import resolve_database_url
    from vigil.seed import seed

    database_url, redis_url = resolve_database_url(), get_settings().with_devstack().redis_url
    if not redis_url:
        raise RuntimeError("No Redis: set REDIS_URL or start the dev stack (`make run`) first.")

    async def run() -> dict[str, int]:
        # Redis too: the seed's writes invalidate the cached people directory.
        engine = create_engine(database_url)
        redis = create_redis(redis_url, timeout_s=2)
        try:
            return await seed(create_sessionmaker(engine), Cache(redis))
        finally:
            await redis.aclose()
            await engine.dispose()

    added = asyncio.run(run())
    print(f"seeded: {added['cameras']} cameras, {added['zones']} zones, {added['people']} people, "
          f"{added['alerts']} alerts added")
    return 0


def cmd_dlq(args: argparse.Namespace) -> int:
    """`vigil dlq list` and `vigil dlq replay TOPIC [--limit N]`, against the configured brokers."""
    from vigil.core.cache import create_redis
    from vigil.core.messaging import Bus, dlq
    from vigil.topics import REDPANDA_TOPICS

    settings = get_settings().with_devstack()
    brokers = [b for b in dict.fromkeys((settings.kafka_bootstrap_servers, settings.redpanda)) if b]
    if not brokers:
        print("error: no broker configured (KAFKA_BOOTSTRAP_SERVERS) and no dev stack running", file=sys.stderr)
        return 2

    async def listing() -> list[dlq.DeadLetterTopic]:
        out: list[dlq.DeadLetterTopic] = []
        for bootstrap in brokers:
            out += await dlq.dead_letter_counts(bootstrap)
        return out

    async def replay() -> int:
        original = args.topic.removesuffix(dlq.DLQ_SUFFIX)
        bootstrap = (settings.redpanda if original in REDPANDA_TOPICS else None) \
            or settings.kafka_bootstrap_servers or brokers[0]
        bus = Bus(bootstrap, name="dlq-replay")
        await bus.start()
        redis = create_redis(settings.redis_url, timeout_s=2) if settings.redis_url else None
        lock = redis.lock(f"vigil:dlq-replay:{original}", timeout=120, blocking_timeout=30) if redis else None
        try:
            if not await bus.wait_ready(10):
                raise RuntimeError(f"broker {bootstrap} not reachable")
            if lock is not None and not await lock.acquire():
                raise RuntimeError(f"a replay of {original} is already running")
            return await dlq.replay_dead_letters(bus, bootstrap, original, limit=args.limit)
        finally:
            if lock is not None and await lock.owned():
                await lock.release()
            if redis is not None:
                await redis.aclose()
            await bus.stop()

    if args.action == "list":
        for d in asyncio.run(listing()):
            print(f"{d.topic}\t{d.count}")
        return 0
    print(f"replayed {asyncio.run(replay())}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vigil", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="run on embedded services (what `make run` does)").set_defaults(fn=cmd_dev)
    serve = sub.add_parser("serve", help="serve against DATABASE_URL, REDIS_URL, ...")
    serve.add_argument("--workers", type=int, help="processes behind one port (default VIGIL_WORKERS, 1)")
    serve.set_defaults(fn=cmd_serve)
    mig = sub.add_parser("migrate", help="alembic upgrade/downgrade/check")
    mig.add_argument("action", nargs="?", default="upgrade", choices=["upgrade", "downgrade", "check"])
    mig.add_argument("revision", nargs="?")
    mig.set_defaults(fn=cmd_migrate)
    sub.add_parser("seed", help="load demo cameras, zones, people and alerts (idempotent)").set_defaults(
        fn=cmd_seed)
    runner = sub.add_parser("runner", help="process scenario jobs (consumer group runners_group)")
    runner.add_argument("--name", help="this runner's name in runs and logs (default host-pid)")
    runner.add_argument("--source", help="default video source for scenarios created without one "
                        "(VIGIL_RUNNER_SOURCE)")
    runner.set_defaults(fn=cmd_runner)
    dlq = sub.add_parser("dlq", help="dead letters: list topics with counts, or replay one topic")
    dlq_sub = dlq.add_subparsers(dest="action", required=True)
    dlq_sub.add_parser("list", help="every <topic>.dlq with the dead letters not replayed yet")
    rep = dlq_sub.add_parser("replay", help="send a topic's dead letters back to it (each once)")
    rep.add_argument("topic", help="the original topic (or its .dlq name)")
    rep.add_argument("--limit", type=int, default=None, help="at most N dead letters")
    dlq.set_defaults(fn=cmd_dlq)
    key = sub.add_parser("create-key", help="create an API key and print it once")
    key.add_argument("--name", required=True)
    key.add_argument("--scopes", required=True, help="comma-separated: admin,write,read,ingest")
    key.set_defaults(fn=cmd_create_key)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore", module="platformdirs")
    args = build_parser().parse_args(argv)
    settings = get_settings()
    setup_logging(settings.log_level, json=settings.log_json)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
