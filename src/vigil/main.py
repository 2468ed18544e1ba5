"""The FastAPI application: `create_app(settings)` and the lifespan that owns every client and task."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from loguru import logger

from vigil import __version__, registry
from vigil.console import mount_console
from vigil.core.cache import Cache, create_redis
from vigil.core.config import Settings, get_settings
from vigil.core.context import AppContext
from vigil.core.db import create_engine, create_read_sessionmaker, create_sessionmaker
from vigil.core.errors import install_error_handlers
from vigil.core.logging import setup_logging
from vigil.core.memory import tune_gc
from vigil.core.messaging import (
    EVENTS_TOPIC,
    Bus,
    ConsumerRecord,
    ConsumerRunner,
    ConsumerSpec,
    OutboxRelay,
    ensure_topics,
)
from vigil.core.messaging.outbox import set_max_payload_bytes
from vigil.core.middleware import AuthMiddleware, BodyLimitMiddleware, RequestLogMiddleware
from vigil.core.migrations import head_revisions
from vigil.core.openapi import install_openapi
from vigil.core.ratelimit import RateLimiter
from vigil.core.reads import Reads
from vigil.core.routing import install_route_index
from vigil.core.security import KeyCache, authorize
from vigil.core.storage import open_blob_store
from vigil.core.tasks import TaskSet
from vigil.core.ws import Hub
from vigil.platform.router import public_router

SHUTDOWN_GRACE_S = 5.0
# The live path (ReID alert -> vigil.events -> WebSocket) has two broker hops; the embedded broker holds
# each fetch this long even when data arrives, so it bounds the latency of each hop.
LIVE_FETCH_WAIT_MS = 20


def open_qdrant(settings: Settings) -> Any:
    """Qdrant server when QDRANT_URL is set, else local mode under the data dir (or None if unset)."""
    from qdrant_client import AsyncQdrantClient

    if settings.qdrant_url:
        return AsyncQdrantClient(url=settings.qdrant_url, timeout=int(settings.dependency_timeout_s) + 1)
    if settings.qdrant_path:
        settings.qdrant_path.mkdir(parents=True, exist_ok=True)
        return AsyncQdrantClient(path=str(settings.qdrant_path))
    return None


class Runtime:
    """Everything the lifespan starts, so shutdown can stop it in order."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.tasks = TaskSet()
        self.relay = OutboxRelay(
            ctx.sessionmaker,
            {"kafka": ctx.bus, "redpanda": ctx.redpanda},
            poll_interval_s=ctx.settings.outbox_poll_interval_s,
            batch_size=ctx.settings.outbox_batch_size,
            route=lambda topic: "redpanda" if topic in registry.REDPANDA_TOPICS else "kafka",
            on_parked=registry.outbox_parked_hook(ctx),
            on_published=self._to_hub,
        )
        self.consumers: list[ConsumerRunner] = []
        self.consumers_started = asyncio.Event()
        self.domains = AsyncExitStack()  # registry.lifespan_hooks, closed in reverse order

    def _to_hub(self, topic: str, partition: int, offset: int, payload: str) -> None:
        # Events this process published reach its own WebSocket clients without the broker round trip.
        if topic == EVENTS_TOPIC:
            self.ctx.hub.from_relay(partition, offset, payload)

    def consumer_status(self) -> dict[str, dict[str, Any]]:
        """Each consumer's state for /health: running, or waiting/starting with the reason."""
        if not self.consumers_started.is_set() and not self.consumers:
            return {}
        return {r.spec.name: r.status() for r in self.consumers}

    def fanout_spec(self) -> ConsumerSpec:
        hub = self.ctx.hub

        async def to_websockets(record: ConsumerRecord) -> None:
            hub.from_log(record.partition, record.offset, record.value.decode() if record.value else "")

        return ConsumerSpec(
            name="ws-fanout", topics=[EVENTS_TOPIC], handler=to_websockets, group=None,
            bootstrap_servers=self.ctx.settings.kafka_bootstrap_servers or "", from_beginning=False, dlq=False,
            fetch_max_wait_ms=LIVE_FETCH_WAIT_MS,
        )

    async def start(self) -> None:
        ctx = self.ctx
        await ctx.bus.start()
        if ctx.redpanda is not ctx.bus:
            await ctx.redpanda.start()
        self.tasks.spawn("outbox-relay", self.relay.run())
        self.tasks.spawn("cache-stats", ctx.cache.run_stats_flusher())
        if ctx.keys is not None and ctx.keys.redis is not None:
            self.tasks.spawn("key-revocations", ctx.keys.listen())
        for hook in registry.lifespan_hooks():
            await self.domains.enter_async_context(hook(ctx))
        if ctx.bus.enabled:
            self.tasks.spawn("consumers-bootstrap", self._start_consumers())

    async def _start_consumers(self) -> None:
        """Wait for the broker, make sure the topics exist, then start every consumer."""
        ctx = self.ctx
        while not await ctx.bus.wait_ready(5):
            logger.info("waiting for the Kafka broker at {} before starting consumers", ctx.bus.bootstrap_servers)
        for bus, topics in ((ctx.bus, registry.KAFKA_TOPICS), (ctx.redpanda, registry.REDPANDA_TOPICS)):
            if not bus.enabled:
                continue
            while True:
                try:
                    await ensure_topics(bus.bootstrap_servers or "", topics)
                    break
                except Exception as exc:
                    logger.warning("cannot create topics on {} yet: {!r}", bus.bootstrap_servers, exc)
                    await asyncio.sleep(1)
        specs = [self.fanout_spec(), *registry.consumer_specs(ctx)]
        for spec in specs:
            # Dead letters go back to the broker the record came from (observations live on Redpanda).
            dlq_bus = ctx.redpanda if spec.bootstrap_servers == ctx.redpanda.bootstrap_servers else ctx.bus
            runner = ConsumerRunner(spec, dlq_bus, max_retries=ctx.settings.consumer_max_retries,
                                    retry_backoff_s=ctx.settings.consumer_retry_backoff_s,
                                    max_backoff_s=ctx.settings.consumer_max_backoff_s)
            self.consumers.append(runner)
            self.tasks.spawn(f"consumer:{spec.name}", runner.run())
        await asyncio.gather(*(r.started.wait() for r in self.consumers))
        # Fan-out readers start at the end of the topic: resolve that position now, so an event
        # published after startup is never skipped.
        for runner in self.consumers:
            if runner.spec.group is None and runner.consumer is not None:
                for tp in runner.consumer.assignment():
                    await runner.consumer.position(tp)
        self.consumers_started.set()
        logger.info("{} consumers running", len(self.consumers))

    async def stop(self) -> None:
        ctx = self.ctx
        await self.domains.aclose()
        self.relay.stop()
        for name in ("cache-stats", "key-revocations"):  # loops for the app's lifetime: nothing to finish
            if (loop := self.tasks.tasks.get(name)) is not None:
                loop.cancel()
        bootstrap = self.tasks.tasks.get("consumers-bootstrap")
        if bootstrap is not None and not bootstrap.done():
            bootstrap.cancel()  # still waiting for the broker or the topics: nothing to drain
        for runner in self.consumers:
            await runner.stop()
            if not runner.started.is_set():  # still joining its group: nothing in hand to finish
                self.tasks.tasks[f"consumer:{runner.spec.name}"].cancel()
        await self.tasks.drain(SHUTDOWN_GRACE_S)
        await ctx.hub.close_all()
        await ctx.bus.stop()
        if ctx.redpanda is not ctx.bus:
            await ctx.redpanda.stop()


def build_context(settings: Settings) -> AppContext:
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set (use `vigil dev` to run on embedded services).")
    if not settings.redis_url:
        raise RuntimeError("REDIS_URL is not set (use `vigil dev` to run on embedded services).")
    set_max_payload_bytes(settings.outbox_max_payload_bytes)
    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size,
                           max_overflow=settings.db_max_overflow)
    redis = create_redis(settings.redis_url, timeout_s=settings.dependency_timeout_s)
    bus = Bus(settings.kafka_bootstrap_servers, name="kafka")
    redpanda = bus if settings.redpanda == settings.kafka_bootstrap_servers else Bus(settings.redpanda, name="redpanda")
    sessionmaker = create_sessionmaker(engine)
    read_sessionmaker = create_read_sessionmaker(engine)
    hub = Hub(settings.ws_queue_size)
    keys = KeyCache(read_sessionmaker, admin_key=settings.admin_key.get_secret_value() if settings.admin_key else None,
                    redis=redis, ttl_s=settings.key_cache_ttl_s)

    def close_key_sockets(key_id: uuid.UUID) -> None:
        hub.close_key(key_id)

    keys.on_revoke.append(close_key_sockets)  # a deleted key's WebSockets close with 1008
    keys.stream_keys = lambda: {client.key_id for client in hub.clients}
    return AppContext(
        settings=settings,
        engine=engine,
        sessionmaker=sessionmaker,
        redis=redis,
        cache=Cache(redis, default_ttl_s=settings.cache_ttl_s),
        bus=bus,
        redpanda=redpanda,
        hub=hub,
        storage=open_blob_store(settings),
        qdrant=None,
        read_sessionmaker=read_sessionmaker,
        keys=keys,
        limiter=RateLimiter(redis, per_key=settings.rate_limit_per_key, ingest=settings.rate_limit_ingest),
        # Its own pool, half the engine's size: reads never wait behind the writes' connections.
        reads=Reads(settings.database_url, max_size=max(2, settings.db_pool_size // 2),
                    acquire_timeout_s=settings.dependency_timeout_s),
    )


def guarded_prefixes(settings: Settings) -> tuple[str, ...]:
    """Where every route needs a key: /api/v1, /ws, and the first path segment of each seed adapter."""
    prefixes = {"/api/v1", "/ws"}
    for router in registry.compat_routers(settings.compat_seeds):
        for route in router.routes:
            path = getattr(route, "path", "")
            if not any(path == p or path.startswith(p + "/") for p in prefixes):
                prefixes.add("/" + path.lstrip("/").split("/", 1)[0])
    return tuple(sorted(prefixes))


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; clients are opened by the lifespan, not here."""
    settings = settings or Settings()
    instance = settings.instance_id or uuid.uuid4().hex[:8]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = build_context(settings)
        try:
            ctx.qdrant = open_qdrant(settings)
        except Exception as exc:  # local mode allows one process per path; say so and carry on degraded
            logger.error("qdrant unavailable: {!r}", exc)
        runtime = Runtime(ctx)
        app.state.ctx = ctx
        app.state.runtime = runtime
        app.state.draining = False
        app.state.alembic_heads = head_revisions()
        await runtime.start()
        tune_gc()  # after start-up: what exists now lives as long as the process
        logger.info("vigil {} instance {} started", __version__, instance)
        try:
            yield
        finally:
            app.state.draining = True
            logger.info("vigil instance {} draining", instance)
            await runtime.stop()
            if ctx.qdrant is not None:
                await ctx.qdrant.close()
            await ctx.redis.aclose()
            if ctx.reads is not None:
                await ctx.reads.close()
            await ctx.engine.dispose()
            logger.info("vigil instance {} stopped", instance)

    app = FastAPI(
        title="Vigil",
        version=__version__,
        summary="One backend for camera and sensor analytics.",
        description="People & zones, plates, assets, faces, scenarios and alerts behind one API. "
        "Every `/api/v1` and `/ws` route needs an API key (`Authorization: Bearer <key>` or `X-API-Key`).",
        lifespan=lifespan,
        docs_url=None,  # served offline by vigil.console from vendored assets
        redoc_url=None,
        # FastAPI's native OpenTelemetry asks the global providers on every request whether it is on; Vigil
        # exports Prometheus metrics and log lines instead, so it is off.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_openapi(app)  # error answers declared once, from the error classes
    # Outermost first on the way in: request id and log line, then the key check (before any body is
    # read), then the body limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(AuthMiddleware, prefixes=guarded_prefixes(settings))
    app.add_middleware(RequestLogMiddleware)
    for middleware in registry.middlewares():
        app.add_middleware(middleware)

    app.include_router(public_router)
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(authorize)])
    for router in registry.api_routers():
        api.include_router(router)
    app.include_router(api)
    ws = APIRouter(prefix="/ws", dependencies=[Depends(authorize)])
    for router in registry.ws_routers():
        ws.include_router(router)
    app.include_router(ws)
    compat = APIRouter(dependencies=[Depends(authorize)])
    for router in registry.compat_routers(settings.compat_seeds):
        compat.include_router(router)
    app.include_router(compat)
    mount_console(app)
    # After every route: a request goes straight to its route, and skips `authorize` when AuthMiddleware
    # has just run the same check for it (core/routing.py).
    install_route_index(app, checked=(authorize,))
    return app


def app_from_environment() -> FastAPI:
    """App factory of each `vigil serve --workers N` process: settings and logging from the environment."""
    settings = get_settings()
    setup_logging(settings.log_level, json=settings.log_json)
    return create_app(settings)
