"""Deny by default, walked over `app.routes` (issue 12): every operation of every protected route gets
no key -> 401, a wrong-scope key -> 403; an `ingest` key opens only the ingest routes; a `read` key no
write; a `write` key no admin route. New routes are covered without editing this file."""

import re
from dataclasses import dataclass

import pytest
import websockets
from fastapi.routing import APIRoute, APIWebSocketRoute

from tests.conftest import auth

pytestmark = pytest.mark.slow  # the matrix: ~600 requests, about a minute
PROBLEM = "application/problem+json"
ZERO = "00000000-0000-0000-0000-000000000000"
PUBLIC = {"/health", "/ready", "/liveness", "/metrics", "/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"}


@dataclass(frozen=True)
class Route:
    path: str
    methods: frozenset[str]
    endpoint: object
    websocket: bool


def walk(routes) -> list[Route]:
    """Every endpoint of the app with its full path (FastAPI keeps included routers nested)."""
    out = []
    for route in routes:
        if hasattr(route, "effective_route_contexts"):  # an included router
            for ctx in route.effective_route_contexts():
                original = ctx.original_route
                if isinstance(original, APIRoute | APIWebSocketRoute):
                    path = ctx.path or getattr(ctx.starlette_route, "path", None) or original.path
                    out.append(Route(path, frozenset(ctx.methods or getattr(original, "methods", ())),
                                     ctx.endpoint or original.endpoint, isinstance(original, APIWebSocketRoute)))
        elif isinstance(route, APIRoute | APIWebSocketRoute):
            out.append(Route(route.path, frozenset(getattr(route, "methods", ())), route.endpoint,
                             isinstance(route, APIWebSocketRoute)))
    return out


def scope_of(route: Route) -> str:
    """The scope the route needs, as core/security.py decides it (marker, else GET=read, else write)."""
    marked = getattr(route.endpoint, "__vigil_scope__", None)
    if marked:
        return marked
    if route.websocket:
        return "read"
    return "read" if set(route.methods) <= {"GET", "HEAD", "OPTIONS"} else "write"


def protected(app) -> list[Route]:
    return [r for r in walk(app.routes) if r.path not in PUBLIC and not r.path.startswith("/console")
            and not getattr(r.endpoint, "__vigil_public__", False)]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", ZERO, path)


def operations(app) -> list[tuple[str, str, str]]:
    """(method, concrete path, needed scope) of every protected HTTP operation."""
    return [(method, concrete(r.path), scope_of(r)) for r in protected(app) if not r.websocket
            for method in sorted(r.methods - {"HEAD", "OPTIONS"})]


async def test_every_operation_is_covered(server, anon):
    ops = {(m, p) for m, p, _ in operations(server.app)}
    spec = (await anon.get("/openapi.json")).json()
    documented = {(m.upper(), concrete(p)) for p, item in spec["paths"].items() for m in item
                  if m in ("get", "post", "put", "patch", "delete") and p not in PUBLIC}
    assert documented <= ops, sorted(documented - ops)
    assert len(ops) >= 100
    assert {s for _, _, s in operations(server.app)} >= {"read", "write", "admin", "ingest"}


async def test_scope_matrix_over_every_route(server, anon, make_key):
    keys = {scope: await make_key(scope, name=f"matrix-{scope}") for scope in ("read", "write", "ingest")}
    failures: list[str] = []
    for method, path, needed in operations(server.app):
        r = await anon.request(method, path)
        if r.status_code != 401 or r.headers.get("content-type") != PROBLEM:
            failures.append(f"no key {method} {path}: {r.status_code}")
        bad = await anon.request(method, path, headers=auth("vgl_000000000000_not-a-key"))
        if bad.status_code != 401:
            failures.append(f"bad key {method} {path}: {bad.status_code}")
        for scope, key in keys.items():
            allowed = {"read": {"read"}, "write": {"read", "write", "ingest"}, "ingest": {"ingest"}}[scope]
            r = await anon.request(method, path, headers=auth(key))
            if needed in allowed:
                if r.status_code in (401, 403) or r.status_code >= 500:
                    failures.append(f"{scope} key {method} {path} (needs {needed}): {r.status_code} {r.text[:200]}")
            elif r.status_code != 403 or r.headers.get("content-type") != PROBLEM:
                failures.append(f"{scope} key {method} {path} (needs {needed}): {r.status_code}, expected 403")
    assert not failures, "\n".join(failures)


async def test_ingest_key_opens_only_the_ingest_routes(server):
    ingest_routes = {(m, p) for m, p, s in operations(server.app) if s == "ingest"}
    assert ("POST", "/api/v1/plates/events") in ingest_routes and ("POST", "/api/v1/observations") in ingest_routes
    assert all(m == "POST" for m, _ in ingest_routes)


async def test_websockets_need_a_read_key(server, make_key):
    read, ingest = await make_key("read", name="ws-read"), await make_key("ingest", name="ws-ingest")
    routes = [r for r in protected(server.app) if r.websocket]
    assert len(routes) >= 4
    for route in routes:
        url = server.ws_url + concrete(route.path)
        for token in (None, "vgl_000000000000_not-a-key", ingest):
            with pytest.raises(websockets.InvalidStatus):
                async with websockets.connect(url + (f"?token={token}" if token else "")):
                    pass
        try:
            async with websockets.connect(f"{url}?token={read}") as ws:
                await ws.ping()
        except websockets.InvalidStatus as exc:
            raise AssertionError(f"read key refused on {route.path}") from exc
