"""WebSocket hub: every event from `vigil.events` goes to the matching local clients.

Each client has a bounded queue and its own sender task; a client whose queue is full is closed
with 1013 (try again later) instead of slowing the others or growing memory without bound.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loguru import logger
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from vigil.core.metrics import WS_CONNECTIONS, WS_DROPPED
from vigil.core.middleware import route_template

WS_TRY_AGAIN_LATER = 1013

Matcher = Callable[[dict[str, Any]], bool]


def field_filter(filters: dict[str, str | None]) -> Matcher:
    """Match messages whose `data[k]` equals (as text) every given filter value."""
    wanted = {k: v for k, v in filters.items() if v not in (None, "")}

    def match(data: dict[str, Any]) -> bool:
        return all(str(data.get(k)) == v for k, v in wanted.items())

    return match


@dataclass(eq=False)
class Client:
    websocket: WebSocket
    path: str
    types: tuple[str, ...]
    match: Matcher
    queue: asyncio.Queue[str]
    kicked: asyncio.Event = field(default_factory=asyncio.Event)
    key_id: Any = None  # the API key it authenticated with (uuid.UUID; None for the env admin key)
    close_code: int | None = None  # set with `kicked` when the server ends the stream for a reason

    def wants(self, message: dict[str, Any]) -> bool:
        type_ = message.get("type", "")
        # No types: everything. A type ending in "." is a prefix ("alert." = every alert event).
        if self.types and not any(type_ == t or (t.endswith(".") and type_.startswith(t)) for t in self.types):
            return False
        data = message.get("data")
        return self.match(data if isinstance(data, dict) else {})


class Hub:
    """Local fan-out to WebSocket clients; fed by the `vigil.events` consumer."""

    def __init__(self, queue_size: int = 256) -> None:
        self.queue_size = queue_size
        self.clients: set[Client] = set()

    def dispatch(self, message: dict[str, Any]) -> int:
        """Queue a message for every interested client; returns how many got it."""
        text: str | None = None
        delivered = 0
        for client in list(self.clients):
            if client.kicked.is_set() or not client.wants(message):
                continue
            text = text or json.dumps(message, separators=(",", ":"))
            try:
                client.queue.put_nowait(text)
                delivered += 1
            except asyncio.QueueFull:
                client.kicked.set()
                WS_DROPPED.labels(client.path).inc()
                logger.warning("websocket client on {} fell {} messages behind; closing with 1013",
                               client.path, self.queue_size)
        return delivered

    async def serve(self, websocket: WebSocket, *, types: tuple[str, ...], match: Matcher | None = None) -> None:
        """Accept a client and stream it matching messages until it leaves or falls behind."""
        path = route_template(websocket.scope)
        client = Client(websocket, path, types, match or (lambda _: True), asyncio.Queue(self.queue_size))
        principal = websocket.scope.get("vigil.principal")
        client.key_id = getattr(principal, "key_id", None)
        await websocket.accept()
        self.clients.add(client)
        WS_CONNECTIONS.labels(path).inc()
        tasks = {
            asyncio.create_task(self._send_queued(client), name="ws-send"),
            asyncio.create_task(self._drain_incoming(websocket), name="ws-receive"),
            asyncio.create_task(client.kicked.wait(), name="ws-kick"),
        }
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.clients.discard(client)
            WS_CONNECTIONS.labels(path).dec()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            code = client.close_code or (WS_TRY_AGAIN_LATER if client.kicked.is_set() else 1000)
            reason = {1000: None, WS_TRY_AGAIN_LATER: "client too slow", 1008: "API key revoked"}.get(code)
            if websocket.application_state != WebSocketState.DISCONNECTED:
                try:  # a stalled client may never read the close frame; do not wait on it for ever
                    await asyncio.wait_for(websocket.close(code, reason), 10)
                except (TimeoutError, RuntimeError, OSError, WebSocketDisconnect):
                    pass

    @staticmethod
    async def _send_queued(client: Client) -> None:
        try:
            while True:
                await client.websocket.send_text(await client.queue.get())
        except (WebSocketDisconnect, RuntimeError, OSError):
            return

    @staticmethod
    async def _drain_incoming(websocket: WebSocket) -> None:
        # Dashboards do not talk to us; reading is how we learn that they hung up.
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
        except (WebSocketDisconnect, RuntimeError, OSError):
            return

    def close_key(self, key_id: Any, code: int = 1008) -> int:
        """Close every stream opened with one API key (it was revoked); returns how many."""
        closed = 0
        for client in list(self.clients):
            if key_id is not None and client.key_id == key_id and not client.kicked.is_set():
                client.close_code = code
                client.kicked.set()
                closed += 1
        if closed:
            logger.info("closed {} websocket(s) of revoked key {} with {}", closed, key_id, code)
        return closed

    async def close_all(self) -> None:
        """Shutdown: tell every client we are going away."""
        for client in list(self.clients):
            try:
                await asyncio.wait_for(client.websocket.close(1001, "server shutting down"), 1)
            except (TimeoutError, RuntimeError, OSError):
                pass
        self.clients.clear()
