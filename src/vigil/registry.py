"""What the app is made of: topics, routers and consumers of every domain, in one place.

Each function imports its domains when `main.create_app` calls it, not at the top: importing this
module (the CLI, the benchmarks, tests reading the topic tables or the retention policies) then does
not load every router, consumer and worker. No domain imports this module, so none of these imports
dodges a cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter
from starlette.types import ASGIApp

from vigil.core.context import AppContext
from vigil.core.messaging import ConsumerSpec
from vigil.core.messaging.outbox import OnParked
from vigil.core.retention import RetentionPolicy
from vigil.core.tasks import background_service, cancelled_on_exit

# The topic tables live in vigil.topics so domains can read them without importing this module (and with it
# every router); re-exported here for main, cli and the benchmarks.
from vigil.topics import KAFKA_TOPICS as KAFKA_TOPICS
from vigil.topics import REDPANDA_TOPICS as REDPANDA_TOPICS


def api_routers() -> list[APIRouter]:
    """Routers mounted under /api/v1 (behind the authorization dependency)."""
    from vigil.alerts.router import policies_router
    from vigil.alerts.router import router as alerts
    from vigil.assets.router import router as assets
    from vigil.audit.router import router as audit
    from vigil.cameras.router import router as cameras
    from vigil.exporters.router import router as exporters
    from vigil.faces.router import router as faces
    from vigil.people.router import router as people
    from vigil.plates.router import router as plates
    from vigil.platform.admin import router as admin
    from vigil.platform.router import api_router
    from vigil.scenarios.router import router as scenarios
    from vigil.zones.router import router as zones

    return [api_router, admin, alerts, policies_router, people, zones, cameras, plates, exporters, assets, faces,
            scenarios, audit]


def ws_routers() -> list[APIRouter]:
    """Routers mounted under /ws (behind the authorization dependency)."""
    from vigil.alerts.router import ws_router as alerts_ws
    from vigil.assets.router import ws_router as assets_ws
    from vigil.plates.router import ws_router as plates_ws
    from vigil.platform.router import ws_router
    from vigil.scenarios.router import ws_router as scenarios_ws

    return [ws_router, alerts_ws, plates_ws, assets_ws, scenarios_ws]


def compat_routers(seeds: list[str]) -> list[APIRouter]:
    """The seed-compatible adapters chosen by VIGIL_COMPAT, mounted at the root behind the same
    authorization as /api/v1 (their HTTP and WebSocket routes alike)."""
    from vigil.compat import anpr, assets, kanta, reid, scenarios

    modules = {"reid": [reid.router], "anpr": [anpr.router, anpr.ws_router], "assets": [assets.router],
               "kanta": [kanta.router], "scenarios": [scenarios.router]}
    return [router for seed in seeds for router in modules[seed]]


def consumer_specs(ctx: AppContext) -> list[ConsumerSpec]:
    """Every domain's Kafka / Redpanda consumers for this app instance."""
    from vigil.assets.tracking.consumers import consumer_specs as assets_consumers
    from vigil.exporters.consumers import consumer_specs as exporter_consumers
    from vigil.people.consumers import reid_alert_specs
    from vigil.scenarios.consumers import consumer_specs as scenario_consumers

    return [*reid_alert_specs(ctx), *exporter_consumers(ctx), *scenario_consumers(ctx), *assets_consumers(ctx)]


def lifespan_hooks() -> list[Callable[[AppContext], AbstractAsyncContextManager[Any]]]:
    """Per-domain resources (worker pools, job loops) entered when the app starts, after its clients,
    and exited in reverse order when it stops. A hook publishes what its routes need in
    `ctx.extensions[<domain>]` and owns every task it starts."""
    from vigil.alerts.evaluator import PolicyEvaluator
    from vigil.assets.tasks import background_tasks as assets_tasks
    from vigil.audit.service import audit_runtime
    from vigil.core.retention import retention_hook
    from vigil.exporters.worker import DeliveryWorker
    from vigil.faces.runtime import faces_runtime
    from vigil.scenarios.sweeper import StaleRunSweeper

    return [
        audit_runtime,
        background_service(DeliveryWorker),
        background_service(PolicyEvaluator),
        cancelled_on_exit(assets_tasks),
        faces_runtime,
        background_service(StaleRunSweeper),
        retention_hook(retention_policies),
    ]


def outbox_parked_hook(ctx: AppContext) -> OnParked:
    """What the outbox relay calls when it parks rows: a `platform` alert (core knows no domain)."""
    from vigil.platform.service import outbox_parked_alert

    async def on_parked(parked: list[Any]) -> None:
        await outbox_parked_alert(ctx, parked=parked)

    return on_parked


def middlewares() -> list[Callable[[ASGIApp], ASGIApp]]:
    """Pure-ASGI middleware of the domains, added outermost (after core's) in this order."""
    from vigil.audit.middleware import AuditMiddleware

    return [AuditMiddleware]


def retention_policies() -> list[RetentionPolicy]:
    """What each domain lets retention purge (its service says how), run by `core.retention`."""
    from vigil.alerts.service import retention_policies as alerts
    from vigil.assets.service import retention_policies as assets
    from vigil.exporters.service import retention_policies as exporters
    from vigil.faces.service import retention_policies as faces
    from vigil.plates.service import retention_policies as plates
    from vigil.scenarios.service import retention_policies as scenarios

    return [*assets(), *exporters(), *scenarios(), *alerts(), *plates(), *faces()]
