"""Prometheus instruments of the assets pipeline (exposed with the rest at GET /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

OBSERVATIONS = Counter(
    "vigil_assets_observations_total",
    "Tag observations by outcome: stored, duplicate, unknown_tag, unknown_gateway, invalid",
    ["result"],
)
ESTIMATES = Counter("vigil_assets_estimates_total", "Location estimates by method", ["method"])
ESTIMATE_BATCH_SECONDS = Histogram(
    "vigil_assets_estimate_batch_seconds", "Time to estimate one batch of due tags (worker thread)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
GEOFENCE_TRANSITIONS = Counter(
    "vigil_assets_geofence_transitions_total", "Geofence enters and exits", ["kind"]
)
