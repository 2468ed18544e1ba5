"""The assets domain's entry point for other domains: what they may call, re-exported from the aggregates.

Inside, assets is one sub-package per aggregate (sites, gateways, assets, jobs, maintenance, geofences,
rules, tracking), each with its own router, service, schemas and models. Other domains (and compat, the
registry) import this module only, so the aggregates can be re-cut without touching them; the
import-linter contract "other domains reach assets only through vigil.assets.service" keeps it so.
"""

from __future__ import annotations

from vigil.assets.geofences.service import purge_geofence_events
from vigil.assets.tracking.service import LocationNotFound, current_location, location_history, purge_locations
from vigil.core.retention import RetentionPolicy

__all__ = ["LocationNotFound", "current_location", "location_history", "retention_policies"]


def retention_policies() -> list[RetentionPolicy]:
    """What the assets domain lets retention purge, and under which settings (listed by the registry)."""
    return [RetentionPolicy("asset_locations", "retention_locations_days", purge_locations),
            RetentionPolicy("geofence_events", "retention_geofence_events_days", purge_geofence_events)]
