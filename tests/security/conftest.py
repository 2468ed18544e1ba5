"""Fixtures for the security suite: the exporter tests' real receivers and broker, and a raw HTTP listener."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio

from tests.exporters.conftest import mqtt_broker, receiver_factory  # noqa: F401 - fixtures reused here
from vigil.core.devstack import free_port


class RawListener:
    """A TCP listener on any loopback address that records each HTTP request head and answers `reply`."""

    def __init__(self, host: str, reply: bytes) -> None:
        self.host, self.port, self.reply = host, free_port(host), reply
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hook"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            self.requests.append(head)
            writer.write(self.reply)
            await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def start(self) -> RawListener:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


OK_REPLY = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"


@pytest_asyncio.fixture(loop_scope="session")
async def listener_factory() -> AsyncIterator:
    made: list[RawListener] = []

    async def make(host: str = "127.0.0.1", reply: bytes = OK_REPLY) -> RawListener:
        listener = await RawListener(host, reply).start()
        made.append(listener)
        return listener

    yield make
    for listener in made:
        await listener.stop()
