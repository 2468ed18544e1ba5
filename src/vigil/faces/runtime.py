"""The faces domain's resources in one app instance: the encoder worker processes and the
cluster job worker task.

Decoding and the dlib models are CPU-bound and partly hold the GIL, so they run in a process pool
(`spawn`: no forked copy of the event loop's threads). Each worker loads the models once. A
semaphore of the same size bounds the images in flight, so a burst of uploads waits its turn
instead of queueing unbounded bytes in the pool; at most `VIGIL_FACES_QUEUE_SIZE` wait, and one more is
refused at once with 503 + Retry-After (`EncoderBusy`). Callers hold no database connection meanwhile.
Opened and closed by the app's lifespan (`registry.lifespan_hooks`).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from loguru import logger

from vigil.core.config import Settings
from vigil.core.context import AppContext
from vigil.core.errors import ServiceUnavailable
from vigil.core.tasks import TaskSet
from vigil.faces import encoder
from vigil.faces.jobs import ClusterJobWorker

T = TypeVar("T")
EXTENSION = "faces"
JOB_STOP_GRACE_S = 2.0  # a recompute still running then is cancelled; its stale row is taken over later


class EncoderUnavailable(ServiceUnavailable):
    title = "Face encoder unavailable"


# Encoder processes run at a lower CPU priority than the app: on a small machine a burst of uploads
# then slows itself rather than every other request of the instance.
WORKER_NICENESS = 10


def _init_worker() -> None:
    """Pool initializer: lower this worker's priority, then load the models once."""
    try:
        os.nice(WORKER_NICENESS)
    except (AttributeError, OSError):  # not on this platform, or not allowed: run at normal priority
        pass
    encoder.warm_up()


class EncoderBusy(ServiceUnavailable):
    title = "Face encoder busy"
    retry_after_s = 2


class FacesRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workers = settings.faces_workers
        self._limit = asyncio.Semaphore(self.workers)
        self.queue_size = settings.faces_queue_size
        self._admitted = 0  # images running or waiting for a worker
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False
        self.jobs_queued = asyncio.Event()  # set after a recompute request commits; the job worker waits on it

    async def wake_jobs(self) -> None:
        self.jobs_queued.set()

    def options(self, *, largest_only: bool = False) -> encoder.AnalyseOptions:
        s = self.settings
        return encoder.AnalyseOptions(max_pixels=s.faces_max_image_pixels, detect_max_side=s.faces_detect_max_side,
                                      upsample=s.faces_detect_upsample, largest_only=largest_only)

    def _executor(self) -> ProcessPoolExecutor:
        if self._closed:
            raise EncoderUnavailable("The face encoder is shutting down.")
        if self._pool is None:  # created on first use: instances that never see a photo pay nothing
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
            )
            logger.info("face encoder pool started with {} worker processes", self.workers)
        return self._pool

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` in a worker process, at most `workers` at a time and `queue_size` waiting;
        beyond that EncoderBusy (503) at once, rather than a wait no client would sit through."""
        if self._admitted >= self.workers + self.queue_size:
            logger.warning("face encoder busy: {} images running or waiting; refused one", self._admitted)
            raise EncoderBusy(
                f"The face encoder has {self._admitted} images in progress or waiting; try again shortly."
            )
        self._admitted += 1
        try:
            async with self._limit:
                loop = asyncio.get_running_loop()
                try:
                    return await loop.run_in_executor(self._executor(), fn, *args)
                except BrokenProcessPool as exc:  # a worker died (out of memory, killed): start afresh
                    logger.error("face encoder worker died: {!r}; restarting the pool", exc)
                    self._discard_pool()
                    raise EncoderUnavailable("A face encoder worker died; try again.") from exc
        finally:
            self._admitted -= 1

    async def analyse(self, data: bytes, *, largest_only: bool = False) -> encoder.Analysis:
        return await self.run(encoder.analyse, data, self.options(largest_only=largest_only))

    def _discard_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    async def close(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, True, cancel_futures=True)
            logger.info("face encoder pool stopped")


@asynccontextmanager
async def faces_runtime(ctx: AppContext) -> AsyncIterator[FacesRuntime]:
    """Lifespan hook: open the runtime, publish it as `ctx.extensions["faces"]`, start the cluster
    job worker as an owned task; on shutdown stop the worker, then the encoder processes."""
    runtime = FacesRuntime(ctx.settings)
    worker = ClusterJobWorker(ctx.sessionmaker, threshold=ctx.settings.faces_match_threshold,
                              poll_interval_s=ctx.settings.faces_job_poll_interval_s, wake=runtime.jobs_queued)
    tasks = TaskSet()
    ctx.extensions[EXTENSION] = runtime
    tasks.spawn("faces-cluster-jobs", worker.run())
    try:
        yield runtime
    finally:
        ctx.extensions.pop(EXTENSION, None)
        worker.stop()
        await tasks.drain(JOB_STOP_GRACE_S)
        await runtime.close()
