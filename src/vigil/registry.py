"""What the app is made of: topics, routers and consumers of every domain, in one place."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter

from vigil.core.bus import EVENTS_TOPIC, ConsumerSpec
from vigil.core.context import AppContext
from vigil.core.tasks import background_service, cancelled_on_exit

# Topics on the Kafka broker, with partitions. Work topics get several so runners can share them;
# `vigil.events` has one so every consumer sees the app's events in the order they happened.
KAFKA_TOPICS: dict[str, int] = {
    EVENTS_TOPIC: 1,
    "person_reid_alerts": 3,
    "scenarios": 3,
    "retry_topic": 3,
}
# Topics on the Redpanda side (the same broker in the dev stack).
REDPANDA_TOPICS: dict[str, int] = {"observations": 3}


def api_routers() -> list[APIRouter]:
    """Routers mounted under /api/v1 (behind the authorization dependency)."""
    from vigil.alerts.router import policies_router
    from vigil.alerts.router import router as alerts
    from vigil.assets.router import router as assets
    from vigil.cameras.router import router as cameras
    from vigil.exporters.router import router as exporters
    from vigil.faces.router import router as faces
    from vigil.people.router import router as people
    from vigil.platform.router import api_router
    from vigil.plates.router import router as plates
    from vigil.scenarios.router import router as scenarios
    from vigil.zones.router import router as zones

    return [api_router, alerts, policies_router, people, zones, cameras, plates, exporters, assets, faces, scenarios]


def ws_routers() -> list[APIRouter]:
    """Routers mounted under /ws (behind the authorization dependency)."""
    from vigil.alerts.router import ws_router as alerts_ws
    from vigil.assets.router import ws_router as assets_ws
    from vigil.platform.router import ws_router
    from vigil.plates.router import ws_router as plates_ws
    from vigil.scenarios.router import ws_router as scenarios_ws

    return [ws_router, alerts_ws, plates_ws, assets_ws, scenarios_ws]


def consumer_specs(ctx: AppContext) -> list[ConsumerSpec]:
    """Every domain's Kafka / Redpanda consumers for this app instance."""
    from vigil.assets.consumers import consumer_specs as assets_consumers
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
    from vigil.exporters.worker import DeliveryWorker
    from vigil.faces.runtime import faces_runtime

    return [background_service(DeliveryWorker), background_service(PolicyEvaluator), cancelled_on_exit(assets_tasks),
            faces_runtime]
