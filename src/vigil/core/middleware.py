"""Pure-ASGI middleware: request id, one log line per request, Prometheus request metrics."""

from __future__ import annotations

import time
import uuid

from loguru import logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.core.metrics import HTTP_LATENCY, HTTP_REQUESTS


def route_template(scope: Scope) -> str:
    """`/api/v1/people/{id}` for `/api/v1/people/3f2a...`: bounded label values for metrics and logs.

    Rebuilt from the matched path parameters, since included routers keep their own relative paths.
    """
    if scope.get("route") is None:
        return "unmatched"
    params = {str(v): k for k, v in (scope.get("path_params") or {}).items()}
    if not params:
        return scope["path"]
    parts = scope["path"].split("/")
    for i, part in enumerate(parts):
        if part in params:
            parts[i] = "{" + params.pop(part) + "}"
    return "/".join(parts)


class RequestLogMiddleware:
    """Logs `METHOD /route/{template} status duration` with a request id; counts and times requests."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")[:64]
                break
        request_id = request_id or uuid.uuid4().hex[:16]
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
                if route not in ("/metrics",):
                    HTTP_REQUESTS.labels(method, route, str(status)).inc()
                    HTTP_LATENCY.labels(method, route).observe(elapsed)
                logger.info("{} {} {} {:.1f}ms", method, route if route != "unmatched" else scope["path"],
                            status, elapsed * 1000)


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
        from vigil.core.errors import problem

        response = problem(413, "Payload too large", f"The request body exceeds {self.max_bytes} bytes.",
                           instance=scope["path"])
        await response(scope, receive, send)


class BodyTooLarge(Exception):
    pass
