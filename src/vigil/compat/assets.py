"""The Asset Tag backend's location routes: current location and history, under both of its paths.

`{asset_id}` is the asset's UUID `id` (the seed's were integers). History is a plain list, newest first.
"""

from __future__ import annotations

import uuid
from typing import Any

from vigil.assets import service as assets
from vigil.assets.tracking.schemas import LocationRead
from vigil.compat import TAG, SeedPage, items
from vigil.core.deps import RedisDep, SessionDep
from vigil.core.routing import Router
from vigil.core.types import AwareTime

router = Router(prefix="/api/v1", tags=[TAG])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown asset, or not located yet"}}


async def _current(asset_id: uuid.UUID, session: SessionDep, redis: RedisDep) -> Any:
    return await assets.current_location(session, redis=redis, asset_id=asset_id)


async def _history(asset_id: uuid.UUID, session: SessionDep, page: SeedPage,
                   since: AwareTime | None = None, until: AwareTime | None = None) -> Any:
    return items(await assets.location_history(session, asset_id=asset_id, page=page, since=since, until=until))


for path in ("/assets/{asset_id}/current-location", "/locations/{asset_id}/current"):
    router.add_api_route(path, _current, methods=["GET"], response_model=LocationRead, responses=NOT_FOUND,
                         summary="Current location", operation_id=f"compat_current_{path.split('/')[1]}")
for path in ("/assets/{asset_id}/location-history", "/locations/{asset_id}/history"):
    router.add_api_route(path, _history, methods=["GET"], response_model=list[LocationRead], responses=NOT_FOUND,
                         summary="Location history", operation_id=f"compat_history_{path.split('/')[1]}")


__all__ = ["router"]
