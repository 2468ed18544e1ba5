"""Assets routes: every aggregate's router, mounted as one (the registry mounts this module's two)."""

from __future__ import annotations

from vigil.assets.assets.router import router as assets
from vigil.assets.gateways.router import router as gateways
from vigil.assets.geofences.router import router as geofences
from vigil.assets.jobs.router import router as jobs
from vigil.assets.maintenance.router import router as maintenance
from vigil.assets.rules.router import router as rules
from vigil.assets.sites.router import router as sites
from vigil.assets.tracking.router import router as tracking
from vigil.assets.tracking.router import ws_router as tracking_ws
from vigil.core.routing import Router

router = Router()
for part in (sites, gateways, assets, tracking, geofences, rules, jobs, maintenance):
    router.include_router(part)

ws_router = Router()
ws_router.include_router(tracking_ws)

__all__ = ["router", "ws_router"]
