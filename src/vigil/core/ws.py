"""WebSocket hub: every event from `vigil.events` goes to the matching local clients.

Events come in the log's order, once each, by one of two ways. The fan-out consumer reads every record
back from the broker (`from_log`). The outbox relay of this process, when it is the one publishing, hands
over each record the broker acknowledged (`from_relay`), which saves the consumer's fetch (tens of ms).
The hub keeps the last offset it gave clients per partition: the relay's record is taken only when it is
the very next one (so nothing read by the consumer is skipped or reordered, say after another instance's
relay published), and the consumer skips what the relay already gave. A log the broker lost (a memory-only
broker restarted) shows as the consumer reading an offset it has read before, and starts over. A record
that is the same text as one given lately is not given again: the relay sends a row again when it cannot
tell the broker kept it, and the consumer may have read the first copy before the broker dropped it.

Each client has a bounded queue and its own sender task; a message is encoded once for all clients,
and on uvicorn's `websockets-sansio` connections (what `vigil serve` runs) framed once too, and each
client's queued frames go out in one write (`RawConnection`).
A client that falls behind is closed with 1013 (try again later) instead of slowing the others or
growing memory without bound: when its queue is full, or when one send has not completed within
`send_timeout_s` (a client stalled at the socket level: it stopped reading and the TCP window is
full). If even the close frame cannot be written, the connection is aborted so its fd is freed.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loguru import logger
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from vigil.core.metrics import WS_CONNECTIONS, WS_DROPPED, WS_FANOUT
from vigil.core.middleware import route_template

WS_TRY_AGAIN_LATER = 1013
# A kicked client is gone within SEND_TIMEOUT_S + CLOSE_TIMEOUT_S + CLOSE_GRACE_S (< 10 s) of stalling.
SEND_TIMEOUT_S = 4.0  # one frame not taken by the client's socket in this long: it is stalled
CLOSE_TIMEOUT_S = 3.0  # the close frame gets this long to be queued, else the connection is aborted
CLOSE_GRACE_S = 2.0  # and this long to be flushed: a client that reads again sees its 1013
RECENT_FRAMES = 4096  # a record sent again after a broker failure comes within this many others

Matcher = Callable[[dict[str, Any]], bool]


def field_filter(filters: dict[str, str | None]) -> Matcher:
    """Match messages whose `data[k]` equals (as text) every given filter value."""
    wanted = {k: v for k, v in filters.items() if v not in (None, "")}

    def match(data: dict[str, Any]) -> bool:
        return all(str(data.get(k)) == v for k, v in wanted.items())

    return match


class OutFrame:
    """One message for every client that wants it: the text, and the WebSocket frame built from it at
    most once (server frames are unmasked, so without compression every client gets the same bytes)."""

    __slots__ = ("_wire", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        if self._wire is None:
            self._wire = Frame(Opcode.TEXT, self.text.encode()).serialize(mask=False)
        return self._wire


@dataclass(eq=False)
class Client:
    websocket: WebSocket
    path: str
    types: tuple[str, ...]
    match: Matcher
    queue: asyncio.Queue[OutFrame]
    kicked: asyncio.Event = field(default_factory=asyncio.Event)
    key_id: Any = None  # the API key it authenticated with (uuid.UUID; None for the env admin key)
    close_code: int | None = None  # set with `kicked` when the server ends the stream for a reason
    raw: RawConnection | None = None  # frames written straight to the transport (see RawConnection)

    def wants(self, message: dict[str, Any]) -> bool:
        type_ = message.get("type", "")
        # No types: everything. A type ending in "." is a prefix ("alert." = every alert event).
        if self.types and not any(type_ == t or (t.endswith(".") and type_.startswith(t)) for t in self.types):
            return False
        data = message.get("data")
        return self.match(data if isinstance(data, dict) else {})


class Hub:
    """Local fan-out to WebSocket clients; fed by the `vigil.events` consumer."""

    def __init__(self, queue_size: int = 256, *, send_timeout_s: float = SEND_TIMEOUT_S) -> None:
        self.queue_size = queue_size
        self.send_timeout_s = send_timeout_s
        self.clients: set[Client] = set()
        self._given: dict[int, int] = {}  # partition -> last offset given to clients (by either way)
        self._read: dict[int, int] = {}  # partition -> last offset the fan-out consumer read
        self._recent: dict[int, None] = {}  # hashes of the last RECENT_FRAMES texts given, oldest first

    def from_log(self, partition: int, offset: int, text: str) -> bool:
        """A record the fan-out consumer read: dispatched unless the relay already gave it. True if so."""
        read = self._read.get(partition)
        if read is not None and offset <= read:  # read again: the broker's log started over
            self._given[partition] = offset - 1
        self._read[partition] = offset
        given = self._given.get(partition)
        if given is not None and offset <= given:
            return False
        return self._give(partition, offset, text, "consumer")

    def from_relay(self, partition: int, offset: int, text: str) -> bool:
        """A record this process's relay published: dispatched only when it is the next one after what
        clients have (else the consumer brings it, in order). True if so."""
        given = self._given.get(partition)
        if given is None or offset != given + 1:
            return False
        return self._give(partition, offset, text, "relay")

    def _give(self, partition: int, offset: int, text: str, via: str) -> bool:
        """Clients have everything up to this record now; it goes to them unless it was given lately."""
        self._given[partition] = offset
        seen = hash(text)  # every envelope has its own ts and ids: the same text is the same record again
        if seen in self._recent:
            WS_FANOUT.labels("repeated").inc()
            return False
        self._recent[seen] = None
        if len(self._recent) > RECENT_FRAMES:
            del self._recent[next(iter(self._recent))]
        WS_FANOUT.labels(via).inc()
        if not self.clients:
            return True
        try:
            message = json.loads(text)
        except ValueError:
            logger.warning("vigil.events[{}]@{} is not JSON; not sent to WebSocket clients", partition, offset)
            return True
        if isinstance(message, dict) and "type" in message:
            # The record is the frame: compact JSON written by the relay, so it is sent as is.
            self.dispatch(message, text=text)
        return True

    def dispatch(self, message: dict[str, Any], *, text: str | None = None) -> int:
        """Queue a message for every interested client; returns how many got it.

        `text` is the message already encoded (the record's JSON, as read from the broker), so the
        frame is not encoded again; otherwise it is encoded once, for the first client that wants it."""
        delivered = 0
        frame: OutFrame | None = None
        for client in tuple(self.clients):
            if client.kicked.is_set() or not client.wants(message):
                continue
            if frame is None:
                frame = OutFrame(text if text is not None else json.dumps(message, separators=(",", ":")))
            try:
                client.queue.put_nowait(frame)
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
        _bound_send_buffer(websocket)
        client.raw = _raw_connection(websocket)
        self.clients.add(client)
        WS_CONNECTIONS.labels(path).inc()
        tasks = {
            asyncio.create_task(self._send_queued(client, self.send_timeout_s), name="ws-send"),
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
                    await asyncio.wait_for(websocket.close(code, reason), CLOSE_TIMEOUT_S)
                except (TimeoutError, RuntimeError, OSError, WebSocketDisconnect):
                    _abort(websocket)
            if client.kicked.is_set():
                # A graceful close waits for the buffer to drain, for ever if the client never reads:
                # give it a moment, then drop the connection so its fd is freed.
                asyncio.get_running_loop().call_later(CLOSE_GRACE_S, _abort, websocket)

    @staticmethod
    async def _send_queued(client: Client, timeout_s: float) -> None:
        queue, websocket, raw = client.queue, client.websocket, client.raw
        try:
            while True:
                frame = await queue.get()
                try:
                    if raw is not None:
                        # Everything queued goes out in one write of frames built once for all clients.
                        frames = [frame.wire]
                        while not queue.empty():
                            frames.append(queue.get_nowait().wire)
                        await raw.write(b"".join(frames), timeout_s)
                        continue
                    async with asyncio.timeout(timeout_s) as deadline:
                        await websocket.send_text(frame.text)
                        # Whatever queued meanwhile goes out in the same wake-up: no task switch per
                        # frame while the socket takes them (a send that must wait yields anyway).
                        # The timeout is per frame.
                        while not queue.empty() and not client.kicked.is_set():
                            deadline.reschedule(asyncio.get_running_loop().time() + timeout_s)
                            await websocket.send_text(queue.get_nowait().text)
                except TimeoutError:
                    client.kicked.set()
                    WS_DROPPED.labels(client.path).inc()
                    logger.warning("websocket client on {} took more than {:.0f}s to take one frame; "
                                   "closing with 1013", client.path, timeout_s)
                    return
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


SEND_BUFFER_BYTES = 64 * 1024


def _protocol(websocket: WebSocket) -> Any:
    """The server protocol under this WebSocket: its `send` is a bound method, possibly wrapped by
    middleware closures (Starlette's exception handling wraps it once)."""
    cached = websocket.scope.get("vigil.protocol")
    if cached is not None:
        return cached
    todo, seen = [getattr(websocket, "_send", None)], 0
    while todo and seen < 20:
        fn = todo.pop()
        seen += 1
        protocol = getattr(fn, "__self__", None)
        if getattr(protocol, "transport", None) is not None:
            websocket.scope["vigil.protocol"] = protocol
            return protocol
        for cell in getattr(fn, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            if callable(value):
                todo.append(value)
    return None


def _transport(websocket: WebSocket) -> Any:
    """The asyncio transport under this WebSocket."""
    return getattr(_protocol(websocket), "transport", None)


class RawConnection:
    """Writes already-built frames straight to the transport of a uvicorn `websockets-sansio`
    connection, the way its own `send` does, minus the per-message work: that `send` encodes, frames
    and writes every message for every client on its own (one write system call per frame).

    Only for a connection without extensions (no permessage-deflate: a compressed frame differs per
    client) that is open. Flow control is the protocol's own: a write waits while the transport is
    paused above its high-water mark, and a wait over the send timeout is a stall (TimeoutError)."""

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self.protocol = protocol

    async def write(self, data: bytes, timeout_s: float) -> None:
        protocol = self.protocol
        await asyncio.wait_for(protocol.writable.wait(), timeout_s)
        if (protocol.disconnected or protocol.close_sent or protocol.transport.is_closing()
                or protocol.conn.state is not State.OPEN):
            raise WebSocketDisconnect(1006)
        protocol.transport.write(data)


def _raw_connection(websocket: WebSocket) -> RawConnection | None:
    """A RawConnection when this is an open, uncompressed uvicorn sansio connection; else None (the
    client is served through `send_text`, as under a test client or another server)."""
    protocol = _protocol(websocket)
    if not isinstance(protocol, WebSocketsSansIOProtocol) or protocol.conn.extensions:
        return None
    return RawConnection(protocol)


def _bound_send_buffer(websocket: WebSocket) -> None:
    """A fixed, small kernel send buffer (no autotuning to megabytes), so a client that stops reading
    fills it in seconds and its stall shows as a send that does not complete."""
    transport = _transport(websocket)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        except OSError:
            pass


def _abort(websocket: WebSocket) -> None:
    """Drop the connection without waiting for its write buffer to drain (uvicorn's protocol owns the
    transport; a graceful close would wait for a client that is not reading)."""
    transport = _transport(websocket)
    if transport is not None and hasattr(transport, "abort"):
        transport.abort()
