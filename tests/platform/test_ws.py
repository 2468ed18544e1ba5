"""WebSocket hub: events written with a DB change reach every instance's clients; slow clients are cut."""

import asyncio
import json
import os

import pytest
import websockets
from pydantic import SecretStr

from tests.conftest import ADMIN_KEY, auth, start_server, stop_server
from vigil.core.db import session_scope
from vigil.core.devstack import free_port
from vigil.core.messaging import emit


async def recv_json(ws, timeout=10.0):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def test_event_reaches_websocket_with_envelope_and_filters(server):
    base = f"{server.ws_url}/ws/events"
    async with websockets.connect(f"{base}?type=test.&camera_id=cam-1", additional_headers=auth(ADMIN_KEY)) as ws, \
            websockets.connect(f"{base}?type=other.thing", additional_headers=auth(ADMIN_KEY)) as other:
        async with session_scope(server.ctx.sessionmaker) as session:
            emit(session, "test.created", {"camera_id": "cam-2", "n": 1})
            emit(session, "test.created", {"camera_id": "cam-1", "n": 2})
        msg = await recv_json(ws)
        assert msg["type"] == "test.created" and msg["data"] == {"camera_id": "cam-1", "n": 2}
        assert msg["ts"].endswith("+00:00")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(other.recv(), 0.5)


async def test_every_instance_serves_every_event(server, base_settings, data_dir):
    """...and the same frames whether they are written raw (shipped: no compression) or compressed per
    client through `send_text` (the second instance runs with VIGIL_WS_DEFLATE=true)."""
    second_settings = base_settings.model_copy(update={
        "port": free_port(), "data_dir": data_dir / "app2", "qdrant_path": data_dir / "app2" / "qdrant",
        "admin_key": SecretStr(ADMIN_KEY), "ws_deflate": True,
    })
    second, task = await start_server(second_settings)
    try:
        async with websockets.connect(f"{server.ws_url}/ws/events?type=fan.out",
                                      additional_headers=auth(ADMIN_KEY)) as a, \
                websockets.connect(f"{second.ws_url}/ws/events?type=fan.out", additional_headers=auth(ADMIN_KEY)) as b:
            # Written through the second instance; both instances' clients receive it once.
            async with session_scope(second.ctx.sessionmaker) as session:
                emit(session, "fan.out", {"id": "x"})
            assert (await recv_json(a))["data"] == {"id": "x"}
            assert (await recv_json(b))["data"] == {"id": "x"}
            assert a.protocol.extensions == [] and [c.raw is not None for c in server.ctx.hub.clients] == [True]
            assert len(b.protocol.extensions) == 1, "the second instance compresses"
            assert [c.raw for c in second.ctx.hub.clients] == [None], "a compressed stream goes through send_text"
            for ws in (a, b):
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(ws.recv(), 0.5)
    finally:
        await stop_server(second, task)


def fanout_via() -> dict[str, float]:
    """vigil_ws_fanout_records_total by `via`, as /metrics shows it (the counter is per process)."""
    from prometheus_client import REGISTRY

    return {via: REGISTRY.get_sample_value("vigil_ws_fanout_records_total", {"via": via}) or 0.0
            for via in ("relay", "consumer", "repeated")}


async def test_events_published_here_reach_clients_once_in_order_most_straight_from_the_relay(server):
    """The relay of the process that publishes hands its events to the local hub; the fan-out consumer reads
    them back and skips them. Clients get every event once, in order."""
    async with websockets.connect(f"{server.ws_url}/ws/events?type=relay.", additional_headers=auth(ADMIN_KEY)) as ws:
        async with session_scope(server.ctx.sessionmaker) as session:
            emit(session, "relay.first", {"n": 0})
        assert (await recv_json(ws))["data"] == {"n": 0}  # the consumer has read the log from here on
        before = fanout_via()
        for n in range(1, 21):
            async with session_scope(server.ctx.sessionmaker) as session:
                emit(session, "relay.next", {"n": n})
        assert [(await recv_json(ws))["data"]["n"] for _ in range(20)] == list(range(1, 21))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 1.0)
        after = fanout_via()
        assert after["relay"] > before["relay"], (before, after)


def test_the_hub_gives_each_offset_once_and_in_order_whichever_way_it_comes():
    from vigil.core.ws import Client, Hub

    hub = Hub()
    before = fanout_via()
    client = Client(None, "/ws/events", (), lambda _: True, asyncio.Queue(100))  # type: ignore[arg-type]
    hub.clients.add(client)

    def frame(n: int) -> str:
        return json.dumps({"type": "t", "data": {"n": n}})

    def sent() -> list[int]:
        out = []
        while not client.queue.empty():
            out.append(json.loads(client.queue.get_nowait().text)["data"]["n"])
        return out

    assert not hub.from_relay(0, 5, frame(5)), "before the consumer read anything, the relay cannot know the order"
    assert hub.from_log(0, 5, frame(5))
    assert hub.from_relay(0, 6, frame(6)) and hub.from_relay(0, 7, frame(7))
    assert not hub.from_log(0, 6, frame(6)) and not hub.from_log(0, 7, frame(7)), "already given by the relay"
    # Someone else published 8 (another instance's relay, before this one took over): not read yet, so the
    # relay's 9 waits for the consumer, which brings both in order.
    assert not hub.from_relay(0, 9, frame(9))
    assert hub.from_log(0, 8, frame(8)) and hub.from_log(0, 9, frame(9))
    assert sent() == [5, 6, 7, 8, 9]
    # The broker lost its log (a memory-only broker restarted): offsets start again at 0.
    assert not hub.from_relay(0, 0, frame(100))
    assert hub.from_log(0, 0, frame(100)) and hub.from_relay(0, 1, frame(101))
    assert sent() == [100, 101]
    # The consumer read a record that the restarted broker then dropped, and the relay sent it again, to a
    # partition of the topic created anew: the same record is not given twice, and what follows it is given.
    assert hub.from_log(0, 2, frame(102))
    assert not hub.from_log(1, 0, frame(102)), "the same record again"
    assert hub.from_log(1, 1, frame(103))
    assert sent() == [102, 103]
    after = fanout_via()
    assert {via: after[via] - before[via] for via in after} == {"relay": 3, "consumer": 6, "repeated": 1}


async def test_what_queued_for_a_client_goes_out_in_one_write_of_frames_built_once(server):
    hub = server.ctx.hub
    url = f"{server.ws_url}/ws/events?type=burst"
    async with websockets.connect(url, additional_headers=auth(ADMIN_KEY)) as one, \
            websockets.connect(url, additional_headers=auth(ADMIN_KEY)) as two:
        for _ in range(100):
            burst = [c for c in hub.clients if c.types == ("burst",)]
            if len(burst) == 2:
                break
            await asyncio.sleep(0.02)
        assert all(c.raw is not None for c in burst), "the shipped server writes frames raw"
        writes: list[list[int]] = [[], []]

        def counting(write, seen):
            def wrapped(data):
                seen.append(len(data))
                return write(data)
            return wrapped

        for client, seen in zip(burst, writes, strict=True):
            transport = client.raw.protocol.transport
            transport.write = counting(transport.write, seen)
        queued = []
        for i in range(50):  # no await in between: both senders wake once to 50 queued frames
            hub.dispatch({"type": "burst", "data": {"i": i, "text": "é" * i}, "ts": "t"})
            queued.append(burst[0].queue._queue[-1])  # type: ignore[attr-defined]
        assert all(burst[1].queue._queue[i] is queued[i] for i in range(50)), "one frame object for every client"
        for ws in (one, two):
            assert [(await recv_json(ws))["data"] for _ in range(50)] == [{"i": i, "text": "é" * i} for i in range(50)]
        assert [len(w) for w in writes] == [1, 1], writes
        assert writes[0] == writes[1] == [sum(len(f.wire) for f in queued)]


async def test_slow_client_is_closed_with_1013_and_others_continue(server):
    hub = server.ctx.hub
    url = f"{server.ws_url}/ws/events?type=flood"
    big = os.urandom(32768).hex()  # incompressible, so socket buffers really fill up
    async with websockets.connect(url, additional_headers=auth(ADMIN_KEY), max_queue=1, max_size=None,
                                  compression=None) as slow, \
            websockets.connect(url, additional_headers=auth(ADMIN_KEY), max_size=None) as fast:
        for _ in range(100):
            if len([c for c in hub.clients if c.types == ("flood",)]) == 2:
                break
            await asyncio.sleep(0.02)
        sent = 0
        # The slow client reads nothing; the fast one reads every message as it comes.
        def slow_still_served() -> bool:  # a kicked client leaves hub.clients right after the kick
            flood = [c for c in hub.clients if c.types == ("flood",)]
            return len(flood) == 2 and not any(c.kicked.is_set() for c in flood)

        while slow_still_served():
            assert sent < hub.queue_size * 100, "the slow client was never cut off"
            hub.dispatch({"type": "flood", "data": {"i": sent, "pad": big}, "ts": "t"})
            assert (await recv_json(fast))["data"]["i"] == sent
            sent += 1
        assert sent > hub.queue_size
        # Once it reads again it finds the backlog and then the 1013 close.
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(slow.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        # The fast client was never disturbed.
        hub.dispatch({"type": "flood", "data": {"i": -1}, "ts": "t"})
        assert (await recv_json(fast))["data"]["i"] == -1


async def test_a_client_stalled_at_the_socket_is_cut_and_its_connection_freed(server):
    """A client that stops reading at the TCP level (tiny receive window, never reads): the hub's send
    to it stops completing, so it is kicked and the connection is dropped, not held for ever."""
    import base64
    import socket
    import time

    import psutil

    hub = server.ctx.hub
    port = int(server.url.rsplit(":", 1)[1])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(sock, (
        f"GET /ws/events?type=stall HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {ADMIN_KEY}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(sock, 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    client_port = sock.getsockname()[1]

    def held() -> bool:  # the server (this process) still has the connection open
        return any(c.laddr and c.laddr.port == port and c.raddr and c.raddr.port == client_port
                   for c in psutil.Process().net_connections(kind="tcp"))

    try:
        for _ in range(100):
            if any(c.types == ("stall",) for c in hub.clients):
                break
            await asyncio.sleep(0.02)
        assert held()
        big = os.urandom(16384).hex()
        started = time.monotonic()
        i = 0
        # A few frames a second, far fewer than the queue holds: only the socket stall can cut it.
        while time.monotonic() - started < 30 and (held() or any(c.types == ("stall",) for c in hub.clients)):
            if i < hub.queue_size // 2:
                hub.dispatch({"type": "stall", "data": {"i": i, "pad": big}, "ts": "t"})
                i += 1
            await asyncio.sleep(0.2)
        elapsed = time.monotonic() - started
        assert not any(c.types == ("stall",) for c in hub.clients), "the stalled client is still served"
        assert not held(), f"the connection is still open after {elapsed:.1f}s"
        assert i < hub.queue_size, "cut by the stalled send, not by a full queue"
    finally:
        sock.close()
