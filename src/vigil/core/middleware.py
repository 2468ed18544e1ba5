"""Pure-ASGI middleware: request id, one log line per request, Prometheus request metrics."""

from __future__ import annotations

import time
import uuid

from loguru import logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.core.metrics import HTTP_LATENCY, HTTP_REQUESTS


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


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
