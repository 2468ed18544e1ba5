"""Pure-ASGI audit middleware: after each audited request, queue one record (no I/O on the request path).

Audited: every HTTP request with a method other than GET/HEAD/OPTIONS (writes, whatever their outcome:
2xx, 4xx including 401/403, 5xx), and every request under /api/v1/admin and /api/v1/auth (admin
routes, reads included). Not audited: device ingest that succeeds (plate events, observations: data,
not changes, and too many to keep), WebSockets. The principal is read from `request.state.principal`
(set by authorization); the request id from the response's `x-request-id` header.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.audit.service import AuditRecord
from vigil.core.db import utcnow
from vigil.core.middleware import route_template

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ADMIN_PREFIXES = ("/api/v1/admin", "/api/v1/auth")
MAX_CAPTURE = 64 * 1024  # a 201 body is kept (up to this size) to record the created id


def audited(method: str, path: str) -> bool:
    return method not in SAFE_METHODS or path.startswith(ADMIN_PREFIXES)


class AuditMiddleware:
    """Outermost layer: sees the final status (including 401/403/413 from inner layers)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not audited(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})  # shared with request.state of every inner layer
        status = 500
        request_id: str | None = None
        body: list[bytes] | None = None

        async def send_wrapper(message: Message) -> None:
            nonlocal status, request_id, body
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"x-request-id":
                        request_id = value.decode("latin-1")[:64]
                if status == 201:
                    body = []
            elif body is not None and message["type"] == "http.response.body":
                if sum(map(len, body)) + len(message.get("body", b"")) <= MAX_CAPTURE:
                    body.append(message.get("body", b""))
                else:
                    body = None
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self._record(scope, state, status, request_id, body)

    @staticmethod
    def _record(scope: Scope, state: dict, status: int, request_id: str | None, body: list[bytes] | None) -> None:
        app = scope.get("app")
        writer = getattr(getattr(app, "state", None), "ctx", None)
        writer = writer.extensions.get("audit") if writer is not None else None
        if writer is None:
            return
        endpoint = scope.get("endpoint")
        if getattr(endpoint, "__vigil_scope__", None) == "ingest" and status < 400:
            return  # device data, not a change
        principal = state.get("principal")
        writer.add(AuditRecord(
            at=utcnow(),
            principal=getattr(principal, "name", None),
            key_id=getattr(principal, "key_id", None),
            method=scope["method"],
            route=route_template(scope),
            path=scope["path"],
            path_params=dict(scope.get("path_params") or {}),
            status=status,
            request_id=request_id,
            body=b"".join(body) if body else None,
        ))
