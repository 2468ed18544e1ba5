"""What the app is made of: topics, routers and consumers of every domain, in one place."""

from __future__ import annotations

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
    from vigil.platform.router import ws_router

    return [ws_router, alerts_ws]


def consumer_specs(ctx: AppContext) -> list[ConsumerSpec]:
    """Every domain's Kafka / Redpanda consumers for this app instance."""
    return []
