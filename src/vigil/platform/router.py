"""Platform routes. Health and docs are public; keys and cache need a key like every /api/v1 route."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, WebSocket
from fastapi.responses import JSONResponse, Response

from vigil.core import metrics
from vigil.core.deps import CacheDep, CtxDep, DrainingDep, HubDep, KeyCacheDep, RuntimeDep, SchemaHeadsDep, SessionDep
from vigil.core.pagination import Page, PageDep
from vigil.core.routing import Router
from vigil.core.security import create_key, delete_key, list_keys, requires
from vigil.core.ws import field_filter
from vigil.platform import service
from vigil.platform.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, CacheStats, Health

public_router = Router(tags=["platform"])
api_router = Router(tags=["platform"])
ws_router = Router(tags=["platform"])


@public_router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(ctx: CtxDep, runtime: RuntimeDep) -> JSONResponse:
    """Per-dependency status and latency; 503 when the database is down."""
    result = await service.health(ctx, consumers=runtime.consumer_status() if runtime is not None else None)
    return JSONResponse(result.model_dump(mode="json"), status_code=503 if result.status == "down" else 200)


@public_router.get("/ready")
async def ready(ctx: CtxDep, draining: DrainingDep, heads: SchemaHeadsDep) -> JSONResponse:
    """200 when the database answers at the schema head; 503 otherwise and while draining."""
    if draining:
        return JSONResponse({"status": "draining"}, status_code=503)
    ok, reason = await service.schema_at_head(ctx, heads)
    return JSONResponse({"status": "ready" if ok else "not_ready", "detail": reason}, status_code=200 if ok else 503)


@public_router.get("/liveness")
async def liveness() -> dict[str, str]:
    return {"status": "alive"}


@public_router.get("/metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


@api_router.post("/auth/keys", status_code=201, response_model=ApiKeyCreated)
@requires("admin")
async def create_api_key(body: ApiKeyCreate, session: SessionDep) -> dict:
    """Create a key; its secret is in this response only."""
    row, key = await create_key(session, name=body.name, scopes=list(body.scopes))
    return {**ApiKeyRead.model_validate(row).model_dump(), "key": key}


@api_router.get("/auth/keys", response_model=Page[ApiKeyRead])
@requires("admin")
async def get_api_keys(session: SessionDep, page: PageDep) -> dict:
    return await list_keys(session, page=page)


@api_router.delete("/auth/keys/{key_id}", status_code=204)
@requires("admin")
async def delete_api_key(key_id: uuid.UUID, session: SessionDep, keys: KeyCacheDep) -> Response:
    """Revoke a key; it stops working at once, here and (within a second) on every instance."""
    await delete_key(session, key_id=key_id, keys=keys)
    return Response(status_code=204)


@api_router.get("/cache/stats", response_model=CacheStats)
async def cache_stats(cache: CacheDep) -> dict:
    return await cache.stats()


@api_router.post("/cache/invalidate/{name}", status_code=204)
async def cache_invalidate(name: str, cache: CacheDep) -> Response:
    await cache.invalidate(name)
    return Response(status_code=204)


@ws_router.websocket("/events")
async def events_stream(
    websocket: WebSocket,
    hub: HubDep,
    type: Annotated[str | None, Query(description="Event type or prefix ending in '.', e.g. 'alert.'")] = None,
) -> None:
    """Every event this instance sees (`{type, data, ts}`), optionally narrowed by type."""
    types = tuple(t.strip() for t in type.split(",") if t.strip()) if type else ()
    filters: dict[str, str | None] = {k: v for k, v in websocket.query_params.items() if k not in ("type", "token")}
    await hub.serve(websocket, types=types, match=field_filter(filters))
