"""Local targets for the exporter tests: a webhook receiver that checks signatures, a real MQTT broker."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable

import pytest_asyncio
import uvicorn

from vigil.core.devstack import free_port


class Receiver:
    """An HTTP server on 127.0.0.1 that records each webhook POST and whether its signature verified."""

    def __init__(
        self,
        *,
        secret: str | None = None,
        status: int = 200,
        port: int | None = None,
        hang_first: bool = False,
        answer_first_after: float = 0.0,
    ) -> None:
        self.secret = secret
        self.status = status
        self.hang_first = hang_first  # the first request never gets an answer (its sender dies waiting)
        self.answer_first_after = answer_first_after  # the first request is answered this late
        self.port = port or free_port()
        self.received: list[dict] = []  # {"delivery", "event", "signature_ok", "body", "headers"}
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def deliveries(self) -> Counter:
        return Counter(r["delivery"] for r in self.received)

    async def app(self, scope, receive, send) -> None:  # a bare ASGI app
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        expected = (
            "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            if self.secret
            else None
        )
        self.received.append(
            {
                "delivery": headers.get("x-vigil-delivery"),
                "event": headers.get("x-vigil-event"),
                "signature_ok": expected is not None
                and hmac.compare_digest(expected, headers.get("x-vigil-signature", "")),
                "body": json.loads(body),
                "headers": headers,
                "path": scope["path"],
            }
        )
        if self.hang_first and len(self.received) == 1:
            await asyncio.sleep(60)
        elif self.answer_first_after and len(self.received) == 1:
            await asyncio.sleep(self.answer_first_after)
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": b"ok"})

    async def start(self) -> None:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            interface="asgi3",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._task = asyncio.create_task(self._server.serve())
        for _ in range(400):
            if self._server.started:
                return
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.025)
        raise TimeoutError("webhook receiver did not start")

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, 10)
            self._server = self._task = None


@pytest_asyncio.fixture(loop_scope="session")
async def receiver_factory() -> AsyncIterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(**kw) -> Receiver:
        r = Receiver(**kw)
        made.append(r)
        return r

    yield make
    for r in made:
        await r.stop()


try:
    from amqtt.plugins.base import BaseAuthPlugin
except ImportError:  # amqtt is installed by the Makefile; without it the MQTT tests fail at the fixture
    BaseAuthPlugin = object  # type: ignore[assignment,misc]


class LetEveryoneIn(BaseAuthPlugin):  # type: ignore[misc,valid-type]
    """amqtt's own anonymous-auth plugin needs pwdlib+argon2; the tests need no auth at all."""

    async def authenticate(self, *, session) -> bool:
        return True


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def mqtt_broker() -> AsyncIterator[int]:
    """A real MQTT broker (amqtt) on 127.0.0.1 for the session; yields its port."""
    from amqtt.broker import Broker

    port = free_port()
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {"tests.exporters.conftest.LetEveryoneIn": {}},
        }
    )
    await broker.start()
    try:
        yield port
    finally:
        await broker.shutdown()


async def wait_for(predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.05) -> None:
    """Poll until predicate() (sync or async) is truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval)
