"""core/routing.Router: a request only walks the routes of the router it is for, and routing answers as
FastAPI's does (the same endpoint for every route, 404 and 405 with Allow)."""

import re
import uuid

from fastapi import FastAPI, routing
from fastapi.routing import APIRoute, _iter_routes_with_context
from starlette.exceptions import HTTPException

from vigil.core.routing import IndexedDispatch, Router, first_segments, route_index


async def _tried(app, monkeypatch, path: str, method: str = "GET") -> tuple[list[str], object]:
    """Route `path` through the app's router for real: the route paths FastAPI tried, and the endpoint
    whose route was chosen (its handler is not run), or None (404/405)."""
    tried: list[str] = []
    chosen: list[object] = []
    matches, handle = APIRoute.matches, APIRoute.handle

    def counting(self, scope):
        tried.append(self.path)
        return matches(self, scope)

    async def record(self, scope, receive, send):
        chosen.append(self.endpoint)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        pass

    monkeypatch.setattr(APIRoute, "matches", counting)
    monkeypatch.setattr(APIRoute, "handle", record)
    try:
        scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "root_path": "",
                 "headers": [], "query_string": b"", "app": app, "state": {}}
        await app.router(scope, receive, send)
    except HTTPException:  # the router's own 404/405 (the app's handlers turn it into problem+json)
        pass
    finally:
        monkeypatch.setattr(APIRoute, "matches", matches)
        monkeypatch.setattr(APIRoute, "handle", handle)
    return tried, (chosen[0] if chosen else None)


def _app() -> FastAPI:
    people, assets, loose = Router(prefix="/people"), Router(), Router()

    @people.get("/{person_id}")
    async def person(person_id: uuid.UUID) -> dict: return {}

    @assets.get("/sites")
    async def sites() -> dict: return {}

    @assets.get("/gateways/{gid}")
    async def gateway(gid: str) -> dict: return {}

    @loose.get("/{anything}/x")
    async def anything(anything: str) -> dict: return {}

    app = FastAPI()
    api = routing.APIRouter(prefix="/api/v1")
    for r in (assets, loose, people):
        api.include_router(r)
    app.include_router(api)
    return app


def test_first_segments():
    app = _app()
    assert first_segments(app.router) == {"api", "docs", "openapi.json", "redoc"}
    routers = {tuple(sorted(first_segments(r.original_router) or ["*"]))
               for r in app.router.routes[-1].original_router.routes}
    assert routers == {("gateways", "sites"), ("*",), ("people",)}


async def test_a_request_skips_routers_it_is_not_for(monkeypatch):
    app = _app()
    tried, endpoint = await _tried(app, monkeypatch, f"/api/v1/people/{uuid.uuid4()}")
    # FastAPI matches at each level of nesting, so a route may be tried more than once; assets' two
    # routes are never tried, and `loose` (a parameter first) still is.
    assert set(tried) == {"/{anything}/x", "/people/{person_id}"} and endpoint.__name__ == "person"
    tried, endpoint = await _tried(app, monkeypatch, "/api/v1/sites")
    assert set(tried) == {"/sites"} and endpoint.__name__ == "sites"
    tried, endpoint = await _tried(app, monkeypatch, "/api/v1sites")
    assert "/sites" not in tried and endpoint is None


async def test_every_route_of_the_app_resolves_to_its_own_endpoint(server, monkeypatch):
    """Each route's path, with its parameters filled in, reaches that route's endpoint (or an earlier one
    that FastAPI would also have chosen: the same path template registered before it)."""
    app = server.app
    checked = 0
    first_for: dict[tuple[str, str], object] = {}
    for route, ctx in _iter_routes_with_context(app.routes):
        if not isinstance(route, APIRoute):
            continue
        path = getattr(ctx, "path_format", None) or route.path_format
        method = sorted(route.methods)[0]
        first_for.setdefault((method, path), route.endpoint)
    for (method, path), endpoint in first_for.items():
        concrete = re.sub(r"\{[^}:]+(:path)?\}", lambda m: "a/b" if m.group(1) else str(uuid.uuid4()), path)
        _, chosen = await _tried(app, monkeypatch, concrete, method)
        if chosen is endpoint:
            checked += 1
            continue
        # A literal route registered earlier can shadow a template (e.g. /people/directory): then the
        # request is not for this route; with a UUID in every parameter that only happens for literals.
        assert chosen is not None, (method, path, concrete)
    assert checked > 150


async def test_the_index_chooses_as_fastapi_does_without_walking_the_routes(server, monkeypatch):
    """For every route of the app (and some paths no route serves), the route index dispatches to the
    endpoint FastAPI's own router chooses, and a hit tries no route on the way."""
    app = server.app
    dispatch = app.router.middleware_stack
    assert isinstance(dispatch, IndexedDispatch)
    requests = {("GET", "/api/v1/no-such-thing"), ("DELETE", "/api/v1/people/directory"), ("GET", "/api/v1sites"),
                ("HEAD", "/liveness"), ("GET", "/api/v1/people/not-a-uuid"), ("GET", "/nowhere")}
    for route, ctx in _iter_routes_with_context(app.routes):
        if isinstance(route, APIRoute):
            path = getattr(ctx, "path_format", None) or route.path_format
            concrete = re.sub(r"\{[^}:]+(:path)?\}", lambda m: "a/b" if m.group(1) else str(uuid.uuid4()), path)
            requests |= {(method, concrete) for method in route.methods}
    hits = 0
    for method, path in sorted(requests):
        monkeypatch.setattr(app.router, "middleware_stack", dispatch.fallback)
        _, by_fastapi = await _tried(app, monkeypatch, path, method)
        monkeypatch.setattr(app.router, "middleware_stack", dispatch)
        tried, by_index = await _tried(app, monkeypatch, path, method)
        assert by_index is by_fastapi, (method, path)
        scope = {"type": "http", "method": method, "path": path, "root_path": ""}
        hit = route_index(app).find(scope)
        if hit is not None and hit.entry.kind == "http":
            assert hit.entry.endpoint is by_fastapi and tried == [], (method, path)
            hits += 1
    assert hits > 200


async def test_404_and_405_as_before(client):
    r = await client.delete("/api/v1/people/directory")
    assert r.status_code == 405 and "GET" in r.headers["allow"]
    r = await client.get("/api/v1/no-such-thing")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    r = await client.get(f"/api/v1/people/{uuid.uuid4()}")
    assert r.status_code == 404


async def test_routes_added_after_the_include_are_found(monkeypatch):
    """A Router caches its segments; a route added later (also to a router it includes) is still reached."""
    app = _app()
    api = app.router.routes[-1].original_router
    assets = next(r.original_router for r in api.routes if first_segments(r.original_router) == {"sites", "gateways"})
    assert (await _tried(app, monkeypatch, "/api/v1/late"))[1] is None  # "late" is not one of its segments yet

    @assets.get("/late")
    async def late() -> dict: return {}

    outer = Router()
    inner = Router()
    outer.include_router(inner)
    api.include_router(outer)
    assert (await _tried(app, monkeypatch, "/api/v1/late"))[1] is late
    assert (await _tried(app, monkeypatch, "/api/v1/inner-late"))[1] is None

    @inner.get("/inner-late")
    async def inner_late() -> dict: return {}

    assert (await _tried(app, monkeypatch, "/api/v1/inner-late"))[1] is inner_late


async def test_a_checked_dependency_is_skipped_only_for_the_route_a_middleware_marked():
    """`install_route_index(checked=...)`: a request the middleware marked with its own route skips the
    checked dependency; an unmarked request, or one marked with another route, runs it (and is refused by
    it), and the route's other dependencies run either way."""
    from fastapi import APIRouter, Depends, HTTPException, Request

    from vigil.core.routing import find_route, install_route_index, mark_checked

    calls = {"guard": 0, "other": 0}

    async def guard(request: Request) -> None:
        calls["guard"] += 1
        if request.headers.get("x-key") != "good":
            raise HTTPException(401)

    async def other() -> int:
        calls["other"] += 1
        return 7

    app = FastAPI()
    api = APIRouter(prefix="/api", dependencies=[Depends(guard)])
    inner = Router(prefix="/things")

    @inner.get("/{thing_id}")
    async def thing(thing_id: int, seven: int = Depends(other)) -> dict:
        return {"id": thing_id, "seven": seven}

    @inner.get("")
    async def things() -> list:
        return []

    api.include_router(inner)
    app.include_router(api)
    install_route_index(app, checked=(guard,))

    def marking(inner_app):
        async def middleware(scope, receive, send):
            if scope["type"] == "http":
                mark = dict(scope["headers"]).get(b"x-mark")
                hit = find_route(scope)
                if mark == b"own" and hit is not None:
                    mark_checked(scope, hit.entry)
                elif mark == b"another":
                    other_hit = route_index(app).find({**scope, "path": "/api/things"})
                    mark_checked(scope, other_hit.entry)
            await inner_app(scope, receive, send)
        return middleware

    app.add_middleware(marking)
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        r = await c.get("/api/things/3", headers={"x-mark": "own"})
        assert r.status_code == 200 and r.json() == {"id": 3, "seven": 7}
        assert calls == {"guard": 0, "other": 1}
        assert (await c.get("/api/things/3")).status_code == 401  # not marked: the guard runs and refuses
        assert (await c.get("/api/things/3", headers={"x-mark": "another"})).status_code == 401
        assert calls["guard"] == 2
        r = await c.get("/api/things/4", headers={"x-key": "good"})
        assert r.status_code == 200 and calls["guard"] == 3


async def test_remembered_parameter_introspection_answers_as_fastapi_works_it_out(server, client, monkeypatch):
    """FastAPI's per-parameter helpers are remembered (core/routing.memoize_param_introspection): for every
    parameter of every route they answer what FastAPI's own functions answer, and a parameter's answer is
    worked out once, not on every request."""
    from fastapi.dependencies import utils
    from fastapi.dependencies.utils import get_flat_params

    from vigil.core import routing as core_routing

    helpers = {name: getattr(utils, name) for name in core_routing._PER_FIELD}
    assert all(getattr(fn, "__vigil_memoized__", False) for fn in helpers.values())
    params = 0
    for route, _ in _iter_routes_with_context(server.app.routes):
        if not isinstance(route, APIRoute):
            continue
        for field in get_flat_params(route.dependant):
            params += 1
            for name in ("_get_param_model", "_is_json_field"):
                assert helpers[name](field) == helpers[name].__wrapped__(field), (route.path, field.name, name)
            aliases = helpers["_get_param_aliases"]
            for options in ({}, {"convert_underscores": True}):
                assert aliases(field, **options) == aliases.__wrapped__(field, **options), (route.path, field.name)
            sequence = helpers["field_annotation_is_sequence"]
            annotation = field.field_info.annotation
            assert sequence(annotation) == sequence.__wrapped__(annotation), (route.path, field.name)
    assert params > 200

    # Once per parameter: three pages of alerts work out each of the 8 query parameters' model only once.
    worked_out: list[str] = []
    original = helpers["_get_param_model"].__wrapped__

    def counting(field):
        worked_out.append(field.name)
        return original(field)

    monkeypatch.setattr(utils, "_get_param_model", core_routing._memoized(counting))
    for _ in range(3):
        assert (await client.get("/api/v1/alerts", params={"limit": 5, "kind": "k"})).status_code == 200
    assert sorted(worked_out) == sorted({"status", "severity", "source", "kind", "subject", "since", "limit",
                                         "offset"}), worked_out
    r = await client.get("/api/v1/alerts", params={"limit": 0})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "limit"], r.text
