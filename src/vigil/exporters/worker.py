"""The delivery worker: a lifespan-owned loop that sends due deliveries, one task per exporter, with
backoff and auto-disable by time."""

from __future__ import annotations

import asyncio
import uuid

from loguru import logger

from vigil.core.context import AppContext
from vigil.core.db import session_scope
from vigil.exporters import service
from vigil.exporters.senders import Senders
from vigil.exporters.ssrf import AllowList
from vigil.exporters.wakeups import register, unregister

# Exporters sent to at the same time by one worker (each has at most one send in flight).
MAX_CONCURRENT_EXPORTERS = 64


class DeliveryWorker:
    """Finds exporters with due deliveries and drains each in its own task, side by side, so one slow or
    hanging receiver never delays another exporter.

    A drain claims a batch in one short transaction (a lease on the rows, SKIP LOCKED so instances
    share the queue), sends with no connection held, and records the outcome in another. If the process
    dies mid-send the rows are still pending and are sent again once the lease ends (at least once;
    receivers dedupe on the delivery id); a worker that is stopped finishes and records the batch it is
    sending, and gives its claims back only if the shutdown grace period runs out.
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
        self._drains: dict[uuid.UUID, asyncio.Task] = {}

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    @property
    def lease_s(self) -> float:
        # Short, so a crashed worker's rows are due again soon; renewed while a send is in flight.
        return max(2 * self.ctx.settings.exporter_timeout_s + 5.0, 15.0)

    async def run(self) -> None:
        register(self._wake)  # new deliveries wake it (wakeups.wake_workers) instead of waiting a poll
        delay = 0.5
        try:
            async with Senders(
                bus=self.ctx.bus, timeout_s=self.ctx.settings.exporter_timeout_s, allow=self.allow,
                telegram_api_base=self.ctx.settings.telegram_api_base,
            ) as senders:
                try:
                    while not self._stopping:
                        try:
                            await self.dispatch(senders)
                            delay = 0.5
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
                    # Asked to stop: each drain ends after its current batch, so a send already on the
                    # wire is recorded, not given back and sent again by another instance. The lifespan
                    # cancels this wait after its grace period; the claims are then given back.
                    await asyncio.gather(*self._drains.values(), return_exceptions=True)
                finally:
                    drains = list(self._drains.values())
                    for task in drains:
                        task.cancel()
                    await asyncio.gather(*drains, return_exceptions=True)
        finally:
            unregister(self._wake)

    async def dispatch(self, senders: Senders) -> int:
        """Start a drain for every exporter with due deliveries that has none running. Returns how many."""
        room = MAX_CONCURRENT_EXPORTERS - len(self._drains)
        if room <= 0:
            return 0
        async with self.ctx.sessionmaker() as session:
            due = await service.due_exporters(session, exclude=set(self._drains), limit=room)
        for exporter_id in due:
            self._drains[exporter_id] = asyncio.create_task(
                self._drain(exporter_id, senders), name=f"{self.name}:{exporter_id}"
            )
        return len(due)

    async def _drain(self, exporter_id: uuid.UUID, senders: Senders) -> None:
        """Send this exporter's due deliveries batch after batch until none is due or a send fails."""
        try:
            while not self._stopping:
                if not await self.run_once(exporter_id, senders):
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database went away between claim and record: the lease expires
            logger.warning("deliveries to exporter {} interrupted ({!r}); retried later", exporter_id, exc)
        finally:
            self._drains.pop(exporter_id, None)
            self._wake.set()  # the loop looks again: more may be due, or due later

    async def run_once(self, exporter_id: uuid.UUID, senders: Senders) -> bool:
        """Claim, send, record one batch of one exporter. True if all of it was delivered (go on)."""
        settings = self.ctx.settings
        async with session_scope(self.ctx.sessionmaker) as session:
            claimed = await service.claim_due(
                session,
                exporter_id=exporter_id,
                limit=self.batch_size,
                lease_s=self.lease_s,
            )
        if claimed is None:
            return False
        renew = asyncio.create_task(self._renew(claimed), name=f"{self.name}:lease:{exporter_id}")
        try:
            errors = await senders.send(claimed.target, claimed.items)
        except asyncio.CancelledError:
            await self._release(claimed)
            raise
        finally:
            renew.cancel()
            await asyncio.gather(renew, return_exceptions=True)
        outcomes = [(item.delivery_id, error) for item, error in zip(claimed.items, errors, strict=True)]
        async with session_scope(self.ctx.sessionmaker) as session:
            counts = await service.record_outcomes(
                session,
                exporter_id=exporter_id,
                outcomes=outcomes,
                disable_after_s=settings.exporter_disable_after_s,
                max_backoff_s=settings.exporter_max_backoff_s,
            )
        logger.debug("deliveries to exporter {}: {}", exporter_id, counts)
        return counts["delivered"] == len(outcomes)

    async def _renew(self, claimed: service.Claimed) -> None:
        """Keep the claim while the send takes long (a slow receiver, many items): a short write now and then."""
        ids = [item.delivery_id for item in claimed.items]
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                async with session_scope(self.ctx.sessionmaker) as session:
                    await service.renew_claims(session, delivery_ids=ids, lease_s=self.lease_s)
            except Exception as exc:  # worst case the rows are sent twice
                logger.warning("could not renew the claim on {} deliveries ({!r})", len(ids), exc)

    async def _release(self, claimed: service.Claimed) -> None:
        try:
            async with asyncio.timeout(5):
                async with session_scope(self.ctx.sessionmaker) as session:
                    await service.release_claims(
                        session, delivery_ids=[item.delivery_id for item in claimed.items]
                    )
        except Exception as exc:  # the lease ends on its own
            logger.warning("could not give back {} claimed deliveries ({!r})", len(claimed.items), exc)

    async def _idle_wait(self) -> float:
        async with self.ctx.sessionmaker() as session:
            due_in = await service.next_due_in(session, exclude=set(self._drains))
        return self.poll_interval_s if due_in is None else min(due_in, self.poll_interval_s)
