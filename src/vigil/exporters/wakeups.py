"""Wake-ups of this process's delivery workers: new deliveries wake them at once instead of at the next poll.

Kept apart from `worker` (which imports `service`), so `service` (after a commit that queued
notifications) and `consumers` (after an event became deliveries) wake the workers without
importing the worker.
"""

from __future__ import annotations

import asyncio

# The wake events of this process's running workers.
_wakers: set[asyncio.Event] = set()


def register(waker: asyncio.Event) -> None:
    """A worker starts: `wake_workers` sets its event from now on."""
    _wakers.add(waker)


def unregister(waker: asyncio.Event) -> None:
    """A worker stopped: its event is no longer set."""
    _wakers.discard(waker)


def wake_workers() -> None:
    """Tell every worker of this process that deliveries are due now (the others poll)."""
    for waker in _wakers:
        waker.set()
