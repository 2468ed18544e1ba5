"""What the app is made of: topics, routers and consumers of every domain, in one place."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from fastapi import APIRouter

from vigil.core.bus import EVENTS_TOPIC, ConsumerSpec
from vigil.core.context import AppContext

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
    from vigil.alerts.router import router as alerts
    from vigil.assets.router import router as assets
    from vigil.platform.router import api_router

    return [api_router, alerts, assets]


def ws_routers() -> list[APIRouter]:
    """Routers mounted under /ws (behind the authorization dependency)."""
    from vigil.alerts.router import ws_router as alerts_ws
    from vigil.assets.router import ws_router as assets_ws
    from vigil.platform.router import ws_router

    return [ws_router, alerts_ws, assets_ws]


def consumer_specs(ctx: AppContext) -> list[ConsumerSpec]:
    """Every domain's Kafka / Redpanda consumers for this app instance."""
    from vigil.assets.consumers import consumer_specs as assets_consumers

    return [*assets_consumers(ctx)]


def background_tasks(ctx: AppContext) -> dict[str, Coroutine[Any, Any, None]]:
    """Long-running loops of the domains (schedulers, periodic checks), by name.

    The lifespan spawns each one at startup and cancels it at shutdown, before the consumers drain;
    each loop must therefore tolerate cancellation at any await (units of work roll back).
    """
    from vigil.assets.tasks import background_tasks as assets_tasks

    return {**assets_tasks(ctx)}
