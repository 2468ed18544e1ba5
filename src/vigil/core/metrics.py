"""Prometheus instruments shared by the app; exposed at GET /metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

HTTP_REQUESTS = Counter(
    "vigil_http_requests_total", "HTTP requests by route template and status", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "vigil_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WS_CONNECTIONS = Gauge("vigil_ws_connections", "Open WebSocket connections", ["path"])
WS_DROPPED = Counter("vigil_ws_slow_client_disconnects_total", "Clients disconnected for falling behind", ["path"])
WS_FANOUT = Counter("vigil_ws_fanout_records_total",
                    "vigil.events records handed to the WebSocket hub, by the way they came (relay: straight from "
                    "this process's outbox relay; consumer: read back from the broker; repeated: the same record "
                    "again, not sent to clients)", ["via"])
CONSUMER_MESSAGES = Counter(
    "vigil_consumer_messages_total", "Messages handled by consumers", ["topic", "group", "result"]
)
CONSUMER_LAG = Gauge("vigil_consumer_lag", "Messages behind the partition head", ["topic", "group", "partition"])
OUTBOX_PUBLISHED = Counter("vigil_outbox_published_total", "Outbox events published", ["topic"])
OUTBOX_PARKED = Counter(
    "vigil_outbox_parked_total", "Outbox events parked because the broker refused them for good", ["topic"]
)
OUTBOX_PENDING = Gauge("vigil_outbox_pending", "Outbox events waiting to be published")
EXPORTER_HELD_DROPPED = Counter(
    "vigil_exporter_held_dropped_total",
    "Held deliveries dropped (oldest first) because a disabled exporter reached VIGIL_EXPORTER_MAX_HELD",
    ["exporter_id"],
)
CACHE_REQUESTS = Counter("vigil_cache_requests_total", "Cache lookups", ["name", "result"])


def render() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
