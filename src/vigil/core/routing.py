"""`Router`: an APIRouter that turns a request away with one string check when none of its routes can match.

FastAPI keeps included routers nested and, for each request, asks every included router in turn to try each
of its routes (a regex and some scope bookkeeping per route). `GET /api/v1/people/{id}` tried 67 routes
before it found its own. A `Router` knows the literal first path segments of its routes (`people`, or
`sites`, `gateways`, ... for a router that holds several) and says "no match" at once for any other
segment, so a request only walks the routes of the router it is for. A router with a route that starts
with a path parameter keeps FastAPI's full walk.

This reads two FastAPI internals (the included router FastAPI puts in the scope, and its include prefix);
FastAPI is pinned in pyproject.toml, and tests/platform/test_routing.py checks the behaviour.
"""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRouter, _get_scope_included_router, _IncludedRouter
from starlette._utils import get_route_path
from starlette.routing import Match
from starlette.types import Scope


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
