"""Owned background tasks: every task the lifespan starts is kept, logged if it dies, and drained on shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from loguru import logger


class BackgroundService(Protocol):
    """A long-running loop a domain asks the lifespan to own (e.g. the exporters' delivery worker)."""

    name: str

    async def run(self) -> None:
        """Work until `stop()` is called; return promptly after it."""

    def stop(self) -> None:
        """Ask `run()` to finish (the lifespan then waits, and cancels after the grace period)."""


class TaskSet:
    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[Any]] = {}

    def spawn(self, name: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self.tasks[name] = task
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        if exc := task.exception():
            logger.opt(exception=exc).error("background task {} crashed", task.get_name())

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - drain-then-cancel needs the deadline itself
        """Wait up to `timeout` for tasks that were asked to stop, then cancel the rest."""
        pending = [t for t in self.tasks.values() if not t.done()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=timeout)
            for task in still:
                logger.warning("background task {} did not stop in {:.0f}s; cancelling", task.get_name(), timeout)
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)
        self.tasks.clear()


def background_service(
    factory: Callable[[Any], BackgroundService], *, grace_s: float = 5.0
) -> Callable[[Any], AbstractAsyncContextManager[BackgroundService]]:
    """Turn a BackgroundService class into a lifespan hook: run it while the app runs, stop it on exit."""

    @asynccontextmanager
    async def hook(ctx: Any) -> AsyncIterator[BackgroundService]:
        service = factory(ctx)
        tasks = TaskSet()
        tasks.spawn(service.name, service.run())
        try:
            yield service
        finally:
            service.stop()
            await tasks.drain(grace_s)

    return hook


def cancelled_on_exit(
    factory: Callable[[Any], dict[str, Coroutine[Any, Any, None]]],
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """Turn named periodic loops (schedulers, checks) into a lifespan hook that cancels them on exit.

    The loops must tolerate cancellation at any await: their units of work roll back.
    """

    @asynccontextmanager
    async def hook(ctx: Any) -> AsyncIterator[None]:
        tasks = TaskSet()
        for name, coro in factory(ctx).items():
            tasks.spawn(name, coro)
        try:
            yield
        finally:
            for task in tasks.tasks.values():
                task.cancel()
            await tasks.drain(5.0)

    return hook
