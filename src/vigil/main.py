"""The FastAPI application: `create_app(settings)` and the lifespan that owns every client and task."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from loguru import logger

from vigil import __version__, registry
from vigil.core.bus import EVENTS_TOPIC, Bus, ConsumerRecord, ConsumerRunner, ConsumerSpec, OutboxRelay, ensure_topics
from vigil.core.cache import Cache, create_redis
from vigil.core.config import Settings
from vigil.core.context import AppContext
from vigil.core.db import create_engine, create_sessionmaker
from vigil.core.errors import install_error_handlers
from vigil.core.middleware import BodyLimitMiddleware, RequestLogMiddleware
from vigil.core.migrations import head_revisions
from vigil.core.openapi import install_openapi
from vigil.core.security import authorize
from vigil.core.storage import LocalBlobStore
from vigil.core.tasks import TaskSet
from vigil.core.ws import Hub

SHUTDOWN_GRACE_S = 5.0


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
        )
        self.consumers: list[ConsumerRunner] = []
        self.consumers_started = asyncio.Event()
        self.domains = AsyncExitStack()  # registry.lifespan_hooks, closed in reverse order

    def fanout_spec(self) -> ConsumerSpec:
        hub = self.ctx.hub

        async def to_websockets(record: ConsumerRecord) -> None:
            message = json.loads(record.value)
            if isinstance(message, dict) and "type" in message:
                hub.dispatch(message)

        return ConsumerSpec(
            name="ws-fanout", topics=[EVENTS_TOPIC], handler=to_websockets, group=None,
            bootstrap_servers=self.ctx.settings.kafka_bootstrap_servers or "", from_beginning=False, dlq=False,
        )

    async def start(self) -> None:
        ctx = self.ctx
        await ctx.bus.start()
        if ctx.redpanda is not ctx.bus:
            await ctx.redpanda.start()
        self.tasks.spawn("outbox-relay", self.relay.run())
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
                                    retry_backoff_s=ctx.settings.consumer_retry_backoff_s)
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
    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size,
                           max_overflow=settings.db_max_overflow)
    redis = create_redis(settings.redis_url, timeout_s=settings.dependency_timeout_s)
    bus = Bus(settings.kafka_bootstrap_servers, name="kafka")
    redpanda = bus if settings.redpanda == settings.kafka_bootstrap_servers else Bus(settings.redpanda, name="redpanda")
    return AppContext(
        settings=settings,
        engine=engine,
        sessionmaker=create_sessionmaker(engine),
        redis=redis,
        cache=Cache(redis, default_ttl_s=settings.cache_ttl_s),
        bus=bus,
        redpanda=redpanda,
        hub=Hub(settings.ws_queue_size),
        storage=LocalBlobStore(settings.blob_dir),
        qdrant=None,
    )


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
            await ctx.engine.dispose()
            logger.info("vigil instance {} stopped", instance)

    app = FastAPI(
        title="Vigil",
        version=__version__,
        summary="One backend for camera and sensor analytics.",
        description="People & zones, plates, assets, faces, scenarios and alerts behind one API. "
        "Every `/api/v1` and `/ws` route needs an API key (`Authorization: Bearer <key>` or `X-API-Key`).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_openapi(app)  # error answers declared once, from the error classes
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestLogMiddleware)

    from vigil.platform.router import public_router

    app.include_router(public_router)
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(authorize)])
    for router in registry.api_routers():
        api.include_router(router)
    app.include_router(api)
    ws = APIRouter(prefix="/ws", dependencies=[Depends(authorize)])
    for router in registry.ws_routers():
        ws.include_router(router)
    app.include_router(ws)
    return app
