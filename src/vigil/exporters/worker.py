"""The delivery worker: a lifespan-owned loop that sends due deliveries, with backoff and auto-disable."""

from __future__ import annotations

import asyncio

from loguru import logger

from vigil.core.context import AppContext
from vigil.core.db import session_scope
from vigil.exporters import service
from vigil.exporters.senders import Senders
from vigil.exporters.ssrf import AllowList

# Workers of this process, woken when the consumer queued new deliveries (instead of waiting a poll).
_wakers: set[asyncio.Event] = set()


def wake_workers() -> None:
    for waker in _wakers:
        waker.set()


class DeliveryWorker:
    """Claims due deliveries with SKIP LOCKED (so instances share the queue) and sends them.

    Locks are held while sending: if the process dies mid-send the rows are still pending and are
    sent again (at least once; receivers dedupe on the delivery id).
    """

    name = "exporter-deliveries"

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.allow = AllowList.parse(settings.exporter_allowed_hosts)
        self.batch_size = settings.exporter_batch_size
        self.poll_interval_s = settings.exporter_poll_interval_s
        self._wake = asyncio.Event()
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        _wakers.add(self._wake)
        delay = 0.5
        try:
            async with Senders(
                bus=self.ctx.bus, timeout_s=self.ctx.settings.exporter_timeout_s, allow=self.allow,
                telegram_api_base=self.ctx.settings.telegram_api_base,
            ) as senders:
                while not self._stopping:
                    try:
                        handled = await self.run_once(senders)
                        delay = 0.5
                        if handled >= self.batch_size:
                            continue  # more may be due: go again at once
                        wait = await self._idle_wait()
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # database down and the like: try again later
                        logger.warning("delivery worker round failed ({!r}); retrying in {:.1f}s", exc, delay)
                        wait, delay = delay, min(delay * 2, 10.0)
                    try:
                        await asyncio.wait_for(self._wake.wait(), wait)
                    except TimeoutError:
                        pass
                    self._wake.clear()
        finally:
            _wakers.discard(self._wake)

    async def run_once(self, senders: Senders) -> int:
        """One round: claim, send, record. Returns how many deliveries were handled."""
        settings = self.ctx.settings
        async with session_scope(self.ctx.sessionmaker) as session:
            claimed = await service.claim_due(session, limit=self.batch_size)
            if not claimed:
                return 0
            counts = await service.send_claimed(
                session,
                claimed,
                senders=senders,
                disable_after=settings.exporter_disable_after_failures,
                max_backoff_s=settings.exporter_max_backoff_s,
            )
        logger.debug("delivery round: {}", counts)
        return len(claimed)

    async def _idle_wait(self) -> float:
        async with self.ctx.sessionmaker() as session:
            due_in = await service.next_due_in(session)
        return self.poll_interval_s if due_in is None else min(due_in, self.poll_interval_s)
