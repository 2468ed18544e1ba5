"""`Router`: an APIRouter that turns a request away with one string check when none of its routes can match.

FastAPI keeps included routers nested and, for each request, asks every included router in turn to try each
of its routes (a regex and some scope bookkeeping per route). `GET /api/v1/people/{id}` tried 67 routes
before it found its own. A `Router` knows the literal first path segments of its routes (`people`, or
`sites`, `gateways`, ... for a router that holds several) and says "no match" at once for any other
segment, so a request only walks the routes of the router it is for. A router with a route that starts
with a path parameter keeps FastAPI's full walk.

This reads two FastAPI internals (the included router FastAPI puts in the scope, and its include prefix);
FastAPI is pinned in pyproject.toml, and tests/platform/test_routing.py checks the behaviour.

`RouteIndex` goes further for the app itself: every route, with its full path, bucketed by the literal
segments in front of its first parameter. The key check (AuthMiddleware) and dispatch (`IndexedDispatch`)
share one lookup per request, and a hit goes straight to its route. FastAPI's nested routing matched each
request twice at every level of nesting (about 15% of `GET /api/v1/people/{id}`). Whatever the index
cannot answer for certain (no match, a wrong method, a mount, a WebSocket) goes to FastAPI's router as
before, so 404, 405 and redirects are FastAPI's own.

`install_route_index(app, checked=...)` names dependencies that a middleware checks for the index's own hit
(`authorize`, which AuthMiddleware has already run for the same route). Each route that has one gets a
second handler without it; dispatch takes that handler only when the middleware marked the request's scope
with that very route (`mark_checked`), so every other request, whatever the reason, runs the full
dependencies as declared (deny by default stays the route's own rule). Each dependency costs FastAPI about
10 us per request.

`memoize_param_introspection()` keeps, per parameter, what FastAPI works out from the parameter alone
(whether it is a model, its aliases, whether it is JSON, whether its type is a sequence). These depend
only on the field FastAPI built at start-up, yet it derives them again for every parameter of every
request: 99-122 us for the 8 query parameters of the alerts page, about 6% of that request.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
from collections.abc import Callable, Iterable
from typing import Any

from fastapi.dependencies import utils as _dependency_utils
from fastapi.routing import (
    APIRoute,
    APIRouter,
    APIWebSocketRoute,
    _effective_route_context_var,
    _get_scope_included_router,
    _IncludedRouter,
    _iter_routes_with_context,
    request_response,
)
from fastapi.telemetry._api import _route_selected
from starlette._utils import get_route_path
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send


def _first_segment(path: str) -> str | None:
    """`people` for `/people/{id}`, `` for `` or `/`, None when the first segment is a path parameter."""
    first = path.lstrip("/").split("/", 1)[0]
    return None if "{" in first else first


def first_segments(router: APIRouter) -> frozenset[str] | None:
    """The literal first path segments of every route of `router` (below its include prefix), or None if
    some route can start with anything."""
    found: set[str] = set()
    for route in router.routes:
        if isinstance(route, _IncludedRouter):
            prefix = route.include_context.prefix
            if prefix:
                segment = _first_segment(prefix)
                if segment is None:
                    return None
                found.add(segment)
                continue
            inner = first_segments(route.original_router)
            if inner is None:
                return None
            found |= inner
            continue
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            return None
        segment = _first_segment(path)
        if segment is None:
            return None
        found.add(segment)
    return frozenset(found)


class Router(APIRouter):
    """An APIRouter that answers "no match" with one segment lookup for paths none of its routes serve."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._segments_version = -1
        self._segments: frozenset[str] | None = None
        self._nested = False  # holds included routers: their changes count too

    def _version(self) -> int:
        # A router of plain routes reads its own counter (O(1) per request); only one that includes others
        # pays FastAPI's walk over them (`_get_routes_version` visits every route).
        return self._get_routes_version() if self._nested else self._routes_version

    def _known_segments(self) -> frozenset[str] | None:
        if self._version() != self._segments_version:  # routes added after the include: recompute
            self._segments = first_segments(self)
            self._nested = any(isinstance(route, _IncludedRouter) for route in self.routes)
            self._segments_version = self._version()
        return self._segments

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        included = _get_scope_included_router(scope)
        if isinstance(included, _IncludedRouter) and included.original_router is self:
            segments = self._known_segments()
            if segments is not None:
                prefix: str = included.include_context.prefix
                path = get_route_path(scope)
                if not path.startswith(prefix):
                    return Match.NONE, {}
                rest = path[len(prefix):]
                if rest and not rest.startswith("/"):
                    return Match.NONE, {}
                if rest.lstrip("/").split("/", 1)[0] not in segments:
                    return Match.NONE, {}
        return super().matches(scope)


ROUTE_KEY = "vigil.route"  # the scope key of the request's `RouteHit`, once looked up
CHECKED_KEY = "vigil.checked_route"  # the `RouteEntry` whose `checked` dependencies a middleware has run
_DEPTH = 3  # literal segments a bucket key holds: `/api/v1/people/...` is its own bucket


class RouteEntry:
    """One route of the app, with its full path: `kind` is "http" (an APIRoute), "websocket" or "other"."""

    __slots__ = ("checked_app", "context", "convertors", "endpoint", "kind", "methods", "order", "path",
                 "public", "regex", "route", "scope")

    def __init__(self, order: int, route: Any, context: Any) -> None:
        self.order, self.route, self.context = order, route, context
        target: Any = context if context is not None else route  # the context carries the full path
        if isinstance(route, APIRoute):
            self.kind, self.methods = "http", frozenset(target.methods or ())
        elif isinstance(route, APIWebSocketRoute):
            self.kind, self.methods = "websocket", frozenset()
            if context is not None and context.starlette_route is not None:
                target = context.starlette_route
        else:
            self.kind, self.methods = "other", frozenset()
            if context is not None and context.starlette_route is not None:
                target = context.starlette_route
        self.path: str = getattr(target, "path_format", None) or getattr(target, "path", "") or ""
        self.regex: Any = getattr(target, "path_regex", None)
        self.convertors: dict[str, Any] = getattr(target, "param_convertors", None) or {}
        self.endpoint = getattr(target, "endpoint", None) or getattr(route, "endpoint", None)
        self.public = bool(getattr(self.endpoint, "__vigil_public__", False))
        self.scope: str | None = getattr(self.endpoint, "__vigil_scope__", None)
        self.checked_app: Any = None  # the handler without the checked dependencies (`without`)

    def without(self, checked: tuple[Callable[..., Any], ...]) -> None:
        """Build `checked_app`: this route's handler with the top-level `checked` dependencies left out, or
        None when it has none of them. FastAPI builds it (`get_route_handler`) from the pruned dependant, so
        everything else (body, response model, status) is the route's own."""
        if self.kind != "http" or not checked:
            return
        target: Any = self.context if self.context is not None else self.route
        dependant = target.dependant
        kept = [d for d in dependant.dependencies if d.call not in checked]
        if len(kept) == len(dependant.dependencies):
            return
        target.dependant = dataclasses.replace(dependant, dependencies=kept)
        token = _effective_route_context_var.set(self.context)
        try:
            self.checked_app = request_response(self.route.get_route_handler())
        finally:
            _effective_route_context_var.reset(token)
            target.dependant = dependant

    def needed(self, method: str | None) -> str:
        """The key scope this route needs: its `requires` mark, else read for GET/HEAD/OPTIONS and
        WebSockets, write for the rest."""
        if self.scope:
            return self.scope
        if self.kind == "websocket":
            return "read"
        return {"GET": "read", "HEAD": "read", "OPTIONS": "read"}.get(method or "", "write")


class RouteHit:
    """The route a request is for, and the raw path parameters its path gave."""

    __slots__ = ("entry", "params")

    def __init__(self, entry: RouteEntry, params: dict[str, str]) -> None:
        self.entry, self.params = entry, params


def _key(path: str) -> tuple[str, ...] | None:
    """The literal segments of a route path in front of its first parameter, at most `_DEPTH` of them."""
    if not path.startswith("/"):
        return None
    key: list[str] = []
    for segment in path[1:].split("/")[:_DEPTH]:
        if "{" in segment:
            break
        key.append(segment)
    return tuple(key)


class RouteIndex:
    """Every route of an app in routing order, looked up by the literal start of the request path."""

    def __init__(self, routes: list[Any], *, checked: Iterable[Callable[..., Any]] = ()) -> None:
        self._buckets: dict[tuple[str, ...], list[RouteEntry]] = {}
        self._everywhere: list[RouteEntry] = []  # routes without a path of their own (a Host): always tried
        checked = tuple(checked)
        for order, (route, context) in enumerate(_iter_routes_with_context(routes)):
            entry = RouteEntry(order, route, context)
            entry.without(checked)
            key = _key(entry.path) if entry.regex is not None else None
            if key is None:
                self._everywhere.append(entry)
            else:
                self._buckets.setdefault(key, []).append(entry)

    def _candidates(self, path: str) -> list[RouteEntry] | Any:
        segments = path[1:].split("/", _DEPTH)[:_DEPTH]
        lists = [found for n in range(len(segments) + 1)
                 if (found := self._buckets.get(tuple(segments[:n]))) is not None]
        if self._everywhere:
            lists.append(self._everywhere)
        if len(lists) == 1:
            return lists[0]
        return heapq.merge(*lists, key=lambda entry: entry.order)  # routing order across buckets

    def find(self, scope: Scope, method: str | None = None) -> RouteHit | None:
        """The first route that fully matches, as FastAPI's routing would choose it, or None.

        A match that is not an APIRoute or APIWebSocketRoute (a mount, a plain route) is returned as an
        "other" hit, so dispatch leaves it to FastAPI.
        """
        path: str = get_route_path(scope)
        if not path.startswith("/"):
            return None
        kind = scope["type"]
        method = method or scope.get("method")
        for entry in self._candidates(path):
            if entry.kind == "other":
                match = entry.regex.match(path) if entry.regex is not None else None
                if entry.regex is None or match:
                    return RouteHit(entry, match.groupdict() if match else {})
                continue
            if entry.kind != kind:
                continue
            match = entry.regex.match(path)
            if match and (kind == "websocket" or method in entry.methods):
                return RouteHit(entry, match.groupdict())
        return None


def route_index(app: Any) -> RouteIndex:
    """The app's route index, built on first use (routes are all in place once the app serves)."""
    index: RouteIndex | None = getattr(app.state, "route_index", None)
    if index is None:
        index = RouteIndex(app.router.routes, checked=getattr(app.state, "route_index_checked", ()))
        app.state.route_index = index
    return index


def mark_checked(scope: Scope, entry: RouteEntry) -> None:
    """A middleware ran the `checked` dependencies' check for `entry`, the route this request is for."""
    scope[CHECKED_KEY] = entry


def find_route(scope: Scope) -> RouteHit | None:
    """The request's route, looked up once per request and kept in the scope."""
    if ROUTE_KEY in scope:
        hit: RouteHit | None = scope[ROUTE_KEY]
        return hit
    hit = route_index(scope["app"]).find(scope)
    scope[ROUTE_KEY] = hit
    return hit


class IndexedDispatch:
    """The app router's entry point: an HTTP request whose route the index knows goes to it directly, the
    way FastAPI's router hands a selected route over (its full-path context, path parameters, `route`);
    everything else goes through FastAPI's router."""

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self.fallback: ASGIApp = router.app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            hit = find_route(scope)
            if hit is not None and hit.entry.kind == "http":
                entry = hit.entry
                scope.setdefault("router", self.router)
                path_params = dict(scope.get("path_params") or {})
                for name, value in hit.params.items():
                    path_params[name] = entry.convertors[name].convert(value)
                scope["endpoint"], scope["path_params"], scope["route"] = entry.endpoint, path_params, entry.route
                _route_selected(scope=scope, path=entry.path)
                if entry.context is not None:  # a route of an included router: its full path and dependencies
                    scope.setdefault("fastapi", {})["effective_route_context"] = entry.context
                if entry.checked_app is not None and scope.get(CHECKED_KEY) is entry:
                    await entry.checked_app(scope, receive, send)  # the index matched the method already
                    return
                await entry.route.handle(scope, receive, send)
                return
        await self.fallback(scope, receive, send)


def install_route_index(app: Any, *, checked: Iterable[Callable[..., Any]] = ()) -> None:
    """Put `IndexedDispatch` in front of the app's router (Starlette's own hook: `Router.middleware_stack`).

    `checked`: dependencies a middleware runs for the index's hit and marks with `mark_checked`; requests so
    marked skip them (see the module docstring)."""
    app.state.route_index_checked = tuple(checked)
    app.router.middleware_stack = IndexedDispatch(app.router)
    memoize_param_introspection()


# The pure per-field helpers of fastapi.dependencies.utils that request_params_to_args calls per parameter.
_PER_FIELD = ("_get_param_model", "_get_param_aliases", "_is_json_field", "field_annotation_is_sequence")
_MEMO_LIMIT = 65536  # entries; fields and annotations are made at start-up, so only new apps add more


def _memoized(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn(obj, **options)` remembered per object (by identity: fields are not hashable, and an annotation
    need not be)."""
    memo: dict[Any, tuple[Any, Any]] = {}

    @functools.wraps(fn)
    def memoized(obj: Any, **options: Any) -> Any:
        key = (id(obj), *options.items()) if options else id(obj)
        found = memo.get(key)
        if found is not None and found[0] is obj:  # the object itself is kept, so its id is not reused
            return found[1]
        value = fn(obj, **options)
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[key] = (obj, value)
        return value

    memoized.__vigil_memoized__ = True  # type: ignore[attr-defined]
    return memoized


def memoize_param_introspection() -> None:
    """Remember FastAPI's per-parameter introspection (module docstring); idempotent. The helpers return
    the same values as before; only how often they are worked out changes."""
    for name in _PER_FIELD:
        fn = getattr(_dependency_utils, name)
        if not getattr(fn, "__vigil_memoized__", False):
            setattr(_dependency_utils, name, _memoized(fn))
