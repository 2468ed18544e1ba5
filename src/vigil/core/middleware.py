"""Pure-ASGI middleware: request id, one log line per request, Prometheus request metrics."""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

from loguru import logger
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.core.errors import problem
from vigil.core.logging import ACCESS_LOG
from vigil.core.metrics import HTTP_LATENCY, HTTP_REQUESTS
from vigil.core.ratelimit import retry_after_header
from vigil.core.routing import ROUTE_KEY, RouteEntry, find_route, mark_checked, route_index
from vigil.core.security import PRINCIPAL_SCOPE_KEY, presented_key


def route_template(scope: Scope) -> str:
    """`/api/v1/people/{id}` for `/api/v1/people/3f2a...`: bounded label values for metrics and logs.

    The route index's full path when it found the route; otherwise rebuilt from the matched path parameters,
    since included routers keep their own relative paths.
    """
    if scope.get("route") is None:
        return "unmatched"
    hit = scope.get(ROUTE_KEY)
    if hit is not None and hit.entry.kind != "other":
        path_format: str = hit.entry.path
        return path_format
    params = {str(v): k for k, v in (scope.get("path_params") or {}).items()}
    if not params:
        path: str = scope["path"]
        return path
    parts = scope["path"].split("/")
    for i, part in enumerate(parts):
        if part in params:
            parts[i] = "{" + params.pop(part) + "}"
    return "/".join(parts)


class RequestLogMiddleware:
    """Logs `METHOD /route/{template} status duration` with a request id; counts and times requests."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._instruments: dict[tuple[str, str, int], tuple[Any, Any]] = {}  # bounded: templates x statuses
        # Request ids: 8 random hex digits per process, then a counter. Unique across instances and
        # workers (each builds its own middleware) without a uuid4 (a getrandom call) on every request.
        self._id_prefix = os.urandom(4).hex()
        self._ids = itertools.count()

    def _observe(self, method: str, route: str, status: int, elapsed: float) -> None:
        instruments = self._instruments.get((method, route, status))
        if instruments is None:
            instruments = (HTTP_REQUESTS.labels(method, route, str(status)), HTTP_LATENCY.labels(method, route))
            self._instruments[(method, route, status)] = instruments
        instruments[0].inc()
        instruments[1].observe(elapsed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")[:64]
                break
        request_id = request_id or f"{self._id_prefix}{next(self._ids) & 0xFFFFFFFF:08x}"
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        with logger.contextualize(request_id=request_id):
            try:
                await self.app(scope, receive, send_wrapper)
            finally:
                elapsed = time.perf_counter() - start
                route = route_template(scope)
                method = scope["method"]
                if route != "/metrics":
                    self._observe(method, route, status, elapsed)
                ACCESS_LOG.write(f"{method} {route if route != 'unmatched' else scope['path']} {status} "
                                 f"{elapsed * 1000:.1f}ms", request_id)


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` with 413, by header or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(scope, receive, send)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except BodyTooLarge:
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, "Payload too large", f"The request body exceeds {self.max_bytes} bytes.",
                           instance=scope["path"])
        await response(scope, receive, send)


class BodyTooLarge(Exception):
    pass


class AuthMiddleware:
    """Checks the API key of every `/api/v1` and `/ws` request before its body is read.

    The route (and so the scope it needs, from its `requires`/`public` marks) is the app's route index's
    answer (core/routing.py), which dispatch then reuses. No key or an unknown key is 401, a key without
    the scope 403 (WebSockets: closed with 1008 before accept), a key over its rate limit 429; each
    refusal closes the connection, so a large body that was announced is never read. The principal is left
    in the scope for `authorize`, the global dependency that still guards every route (deny by default):
    a request this middleware let through for the route the index found skips that second check of the
    same key and scope (core/routing.py, `install_route_index(checked=...)`); any other request runs it.
    """

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...] = ("/api/v1", "/ws")) -> None:
        self.app = app
        self.prefixes = tuple(sorted(set(prefixes), key=len, reverse=True))

    def _route(self, scope: Scope) -> RouteEntry | None:
        hit = find_route(scope)
        if hit is None and scope.get("method") == "HEAD":  # 405 from routing, but it reads: the GET's scope
            hit = route_index(scope["app"]).find(scope, method="GET")
        if hit is None or hit.entry.kind == "other":
            return None  # 404 or 405: routing answers without reading the body
        return hit.entry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        entry = self._route(scope)
        if entry is None or entry.public:
            await self.app(scope, receive, send)
            return
        ctx = scope["app"].state.ctx
        conn = HTTPConnection(scope)
        key = presented_key(conn)
        principal = await ctx.keys.resolve(key) if key else None
        if principal is None:
            await self._refuse(scope, send, 401, "Unauthorized",
                               "A valid API key is required (Authorization: Bearer <key> or X-API-Key).",
                               {"WWW-Authenticate": "Bearer"})
            return
        scope.setdefault("state", {})["principal"] = principal  # the audit log names who was refused
        needed = entry.needed(scope.get("method"))
        if not principal.allows(needed):
            await self._refuse(scope, send, 403, "Forbidden", f"This key lacks the '{needed}' scope this route "
                               "requires." if scope["type"] == "http" else f"scope '{needed}' required")
            return
        limiter = ctx.limiter
        if limiter is not None and limiter.enabled:
            identity = str(principal.key_id) if principal.key_id else "env-admin"
            wait = await limiter.hit(identity, principal.scopes)
            if wait is not None:
                await self._refuse(scope, send, 429, "Too many requests",
                                   "This key is over its request rate; slow down.",
                                   {"Retry-After": retry_after_header(wait)})
                return
        scope[PRINCIPAL_SCOPE_KEY] = principal
        mark_checked(scope, entry)  # what `authorize` would check again: dispatch may skip it for this route
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send, status: int, title: str, detail: str,
                      headers: dict[str, str] | None = None) -> None:
        # Routing never runs for a refusal: name the route here, so the access log and the audit log
        # carry its template (`/api/v1/people/{person_id}`), not "unmatched".
        entry = self._route(scope)
        if entry is not None and scope.get("route") is None:
            match = entry.regex.match(scope["path"])
            scope["route"], scope["path_params"] = entry.route, (match.groupdict() if match else {})
        if scope["type"] == "websocket":
            reason = "missing or invalid API key" if status == 401 else detail
            await send({"type": "websocket.close", "code": 1008, "reason": reason[:120]})
            return
        response = problem(status, title, detail, headers={**(headers or {}), "Connection": "close"},
                           instance=scope["path"])

        async def no_body() -> Message:  # the body is never read: the connection closes after the answer
            return {"type": "http.disconnect"}

        await response(scope, no_body, send)
