"""Cluster recompute jobs: a worker task per app instance claims queued jobs and runs them.

A job is a row (`face_cluster_jobs`), so any instance may run it and any instance can report its
progress. The worker wakes when a request that queued a job commits (`core.db.after_commit`, through
`FacesRuntime.wake_jobs`) and otherwise polls every `VIGIL_FACES_JOB_POLL_INTERVAL_S`, which
also picks up jobs queued elsewhere or left behind by an instance that stopped mid-run.
"""

from __future__ import annotations

import asyncio
import uuid

from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vigil.core.db import session_scope, utcnow
from vigil.faces import clustering, encoder

PROGRESS_EVERY_S = 0.5  # how often a running job writes its progress
STALE_AFTER_S = 600.0  # a running job whose progress has not moved for this long is taken over


class ClusterJobWorker:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, threshold: float,
                 poll_interval_s: float, wake: asyncio.Event | None = None) -> None:
        self.sessionmaker = sessionmaker
        self.threshold = threshold
        self.poll_interval_s = poll_interval_s
        self.wake = wake or asyncio.Event()
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True
        self.wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self.wake.clear()  # before claiming: a job queued from now on wakes the next round
            try:
                ran = await self.run_next()
            except Exception as exc:  # the database may be down: log, wait, try again
                logger.opt(exception=exc).error("face cluster worker failed to claim a job")
                ran = False
            if ran:
                continue
            try:
                await asyncio.wait_for(self.wake.wait(), self.poll_interval_s)
            except TimeoutError:
                pass

    async def run_next(self) -> bool:
        """Claim and run one job; False when none is waiting."""
        async with session_scope(self.sessionmaker) as session:
            job = await clustering.claim_job(session, stale_after_s=STALE_AFTER_S)
            if job is None:
                return False
            job_id, event_id = job.id, job.event_id
        logger.info("face cluster job {} started for event {}", job_id, event_id)
        try:
            await self.recompute(job_id, event_id)
        except asyncio.CancelledError:
            raise  # shutting down: another instance (or this one, restarted) takes it over when stale
        except Exception as exc:
            logger.opt(exception=exc).error("face cluster job {} failed", job_id)
            async with session_scope(self.sessionmaker) as session:
                await clustering.set_job_progress(session, job_id=job_id, status="failed",
                                               error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=utcnow())
        return True

    async def recompute(self, job_id: uuid.UUID, event_id: uuid.UUID) -> None:
        model = encoder.DEFAULT_MODEL
        async with session_scope(self.sessionmaker) as session:
            face_ids, vectors = await clustering.event_vectors(session, event_id=event_id, model=model)
            if not await clustering.set_job_progress(session, job_id=job_id, phase="clustering", total=len(face_ids)):
                return
        done = 0

        def edges_done(rows: int) -> None:  # called from the clustering thread
            nonlocal done
            done = rows

        # numpy's distance products release the GIL; the thread keeps the loop free meanwhile.
        labelling = asyncio.ensure_future(asyncio.to_thread(
            encoder.cluster_labels, vectors, self.threshold, edges_done=edges_done
        ))
        try:
            while not labelling.done():
                await asyncio.wait({labelling}, timeout=PROGRESS_EVERY_S)
                async with session_scope(self.sessionmaker) as session:
                    if not await clustering.set_job_progress(session, job_id=job_id, processed=done):
                        return  # the event (and its job) was deleted meanwhile
            labels = labelling.result()
        finally:
            if not labelling.done():
                await asyncio.gather(labelling, return_exceptions=True)  # threads cannot be cancelled
        async with session_scope(self.sessionmaker) as session:
            await clustering.set_job_progress(session, job_id=job_id, phase="saving", processed=len(face_ids))
        async with session_scope(self.sessionmaker) as session:
            count = await clustering.apply_clustering(session, job_id=job_id, event_id=event_id, model=model,
                                                      face_ids=face_ids, labels=labels, threshold=self.threshold)
        logger.info("face cluster job {} done: {} faces in {} clusters", job_id, len(face_ids), count)
