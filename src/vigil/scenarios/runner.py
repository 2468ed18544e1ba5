"""`vigil runner`: a worker process that takes scenario jobs from Kafka and processes the video.

Runners share the consumer group `runners_group` on topic `scenarios`. A job's offset is committed as
soon as its run is claimed in the database; the run then goes on as a task the runner owns (at most
VIGIL_SCENARIO_RUNNER_MAX_RUNS at once), heartbeating its run row, so a partition never waits behind a
long (or live, endless) run, and a rebalance hands over only jobs nobody claimed. A runner that dies
mid-run leaves a run whose heartbeat goes stale: the app's sweeper (`scenarios/sweeper.py`) re-dispatches
it as the next attempt, or fails the scenario with an alert. A runner that is stopped gives its runs back
and queues their jobs again.

Decoding and detection run in a worker thread; the event loop only talks to the database and Kafka.
Each batch of predictions is stored with the run's progress in one transaction, which is also where
the runner learns that the scenario is shutting down (stop), or was failed, restarted or deleted (abort).
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from loguru import logger
from pydantic import ValidationError

from vigil.core.config import Settings
from vigil.core.db import create_engine, create_sessionmaker, session_scope
from vigil.core.messaging import (
    Bus,
    ConsumerRecord,
    ConsumerRunner,
    ConsumerSpec,
    OutboxRelay,
    ensure_topics,
    parse_json,
)
from vigil.core.messaging.outbox import set_max_payload_bytes
from vigil.scenarios import runs, service
from vigil.scenarios.detect import Detectors, SourceError, VideoSource
from vigil.scenarios.schemas import Job, ScenarioParams, mask_source
from vigil.scenarios.sources import SourcePolicy, SourceRefused, vet_source
from vigil.topics import KAFKA_TOPICS, REDPANDA_TOPICS

T = TypeVar("T")

# A run may take hours (a live stream runs until stopped). Kafka would otherwise evict a member
# that has not polled for 5 minutes and give its job to another runner while it still works on it.
MAX_POLL_INTERVAL_MS = 24 * 3600 * 1000
BATCH_SECONDS = 1.0  # progress, heartbeat and the stop check at least this often


def default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class RunAborted(Exception):
    """The run is no longer ours (cancelled, taken over, scenario deleted): drop it quietly."""


class _Assignments(ConsumerRebalanceListener):
    """Logs which partitions of `scenarios` this runner owns (operators and tests watch for it)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.partitions: list[int] = []

    async def on_partitions_revoked(self, revoked: set) -> None:
        if revoked:
            logger.info("runner {} gives up partitions {}", self.name, sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: set) -> None:
        self.partitions = sorted(tp.partition for tp in assigned)
        logger.info("runner {} assigned partitions {}", self.name, self.partitions)


class _JobConsumer(ConsumerRunner):
    """The core consumer runner, subscribed with a rebalance listener."""

    def __init__(self, spec: ConsumerSpec, dlq_bus: Bus, listener: _Assignments) -> None:
        super().__init__(spec, dlq_bus)
        self.listener = listener

    def _make_consumer(self) -> AIOKafkaConsumer:
        consumer = super()._make_consumer()
        consumer.subscribe(self.spec.topics, listener=self.listener)
        return consumer


class ScenarioRunner:
    """One runner process: a consumer of `scenarios`, an outbox relay, and the job loop."""

    def __init__(self, settings: Settings, *, name: str | None = None) -> None:
        if not settings.database_url or not settings.kafka_bootstrap_servers:
            raise RuntimeError("the runner needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS")
        self.settings = settings
        self.sources = SourcePolicy.from_settings(settings)
        self.name = name or default_name()
        set_max_payload_bytes(settings.outbox_max_payload_bytes)
        self.engine = create_engine(settings.database_url, pool_size=2, max_overflow=2)
        self.sessionmaker = create_sessionmaker(self.engine)
        self.bus = Bus(settings.kafka_bootstrap_servers, name="kafka")
        self.redpanda = (self.bus if settings.redpanda == settings.kafka_bootstrap_servers
                         else Bus(settings.redpanda, name="redpanda"))
        # Runs and events this runner writes leave through the outbox; any instance's relay may publish them.
        self.relay = OutboxRelay(
            self.sessionmaker, {"kafka": self.bus, "redpanda": self.redpanda},
            poll_interval_s=settings.outbox_poll_interval_s, batch_size=settings.outbox_batch_size,
            route=lambda topic: "redpanda" if topic in REDPANDA_TOPICS else "kafka",
        )
        self.current_job: Job | None = None  # the job being claimed (on the consumer loop)
        self.runs: dict[uuid.UUID, asyncio.Task[None]] = {}  # claimed runs, each an owned task
        self._slots = asyncio.Semaphore(settings.scenario_runner_max_runs)
        self.assignments = _Assignments(self.name)
        self.consumer = _JobConsumer(ConsumerSpec(
            name=f"runner:{self.name}", topics=[service.JOBS_TOPIC], handler=self.handle, group=runs.RUNNERS_GROUP,
            bootstrap_servers=settings.kafka_bootstrap_servers, batch_size=1,
            max_retries=settings.consumer_max_retries, retry_backoff_s=settings.consumer_retry_backoff_s,
            extra={"max_poll_interval_ms": MAX_POLL_INTERVAL_MS},
        ), self.bus, self.assignments)

    # -- process lifecycle -------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; then give back the run in hand and leave the group."""
        await self.bus.start()
        if self.redpanda is not self.bus:
            await self.redpanda.start()
        relay = asyncio.create_task(self.relay.run(), name="runner-outbox-relay")
        consumer: asyncio.Task[None] | None = None
        try:
            while not stop.is_set() and not await self.bus.wait_ready(5):
                logger.info("runner {} waiting for the broker at {}", self.name, self.bus.bootstrap_servers)
            await self._ensure_topics(stop)
            if stop.is_set():
                return
            consumer = asyncio.create_task(self.consumer.run(), name="runner-consumer")
            logger.info("runner {} started", self.name)
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({consumer, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
        finally:
            logger.info("runner {} stopping", self.name)
            await self.consumer.stop()
            if consumer is not None and not consumer.done():
                # Claiming a job: cancel (its message stays uncommitted). Still joining the group or idle:
                # it finishes its poll and leaves the group.
                grace = 0 if self.current_job or not self.consumer.started.is_set() else 5
                try:
                    await asyncio.wait_for(asyncio.shield(consumer), grace)
                except TimeoutError:
                    consumer.cancel()
                await asyncio.gather(consumer, return_exceptions=True)
            # Runs in hand: cancelling releases each run and queues its job again for another runner.
            in_hand = list(self.runs.values())
            for task in in_hand:
                task.cancel()
            await asyncio.gather(*in_hand, return_exceptions=True)
            self.relay.stop()
            await asyncio.gather(relay, return_exceptions=True)
            await self.bus.stop()
            if self.redpanda is not self.bus:
                await self.redpanda.stop()
            await self.engine.dispose()
            logger.info("runner {} stopped", self.name)

    async def _ensure_topics(self, stop: asyncio.Event) -> None:
        topics = {t: KAFKA_TOPICS[t] for t in (service.JOBS_TOPIC, runs.RETRY_TOPIC)}
        while not stop.is_set():
            try:
                await ensure_topics(self.settings.kafka_bootstrap_servers or "", topics)
                return
            except Exception as exc:
                logger.warning("runner {} cannot create topics yet: {!r}", self.name, exc)
                await asyncio.sleep(1)

    # -- one job -----------------------------------------------------------------------------

    async def handle(self, record: ConsumerRecord) -> None:
        """Claim the job's run, then hand it to an owned task and return, so its offset is committed
        and the partition goes on. Waits for a free slot first (VIGIL_SCENARIO_RUNNER_MAX_RUNS)."""
        job = parse_json(record, Job)  # PoisonMessage -> scenarios.dlq
        self.current_job = job
        try:
            with logger.contextualize(scenario_id=str(job.scenario_id), run_id=str(job.run_id)):
                await self._slots.acquire()
                try:
                    claimed = await self.claim(job)
                except BaseException:
                    self._slots.release()
                    raise
                if not claimed:
                    self._slots.release()
                    return
                task = asyncio.create_task(self._owned_run(job), name=f"run:{job.run_id}")
                self.runs[job.run_id] = task
        finally:
            self.current_job = None

    async def claim(self, job: Job) -> bool:
        """Take the run in the database. False when there is nothing to do: done, superseded, or held by
        a live runner (whose death the app's sweeper notices; the job is not ours to wait for)."""
        async with session_scope(self.sessionmaker) as session:
            claim = await runs.claim_run(session, job=job, runner=self.name,
                                            stale_after_s=self.settings.scenario_stale_run_s)
        if claim.verdict != "run":
            logger.info("runner {} skips scenario {} run {}: {}", self.name, job.scenario_id, job.run_id, claim.reason)
            return False
        logger.info("runner {} runs scenario {} run {} attempt {} on {}{}", self.name, job.scenario_id, job.run_id,
                    job.attempt, mask_source(job.source or self.settings.runner_source),
                    f" ({claim.reason})" if claim.reason else "")
        return True

    async def _owned_run(self, job: Job) -> None:
        try:
            with logger.contextualize(scenario_id=str(job.scenario_id), run_id=str(job.run_id)):
                await self.process(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database went away while reporting: the sweeper will notice
            logger.opt(exception=exc).error("runner {} lost run {}", self.name, job.run_id)
        finally:
            self.runs.pop(job.run_id, None)
            self._slots.release()

    async def process(self, job: Job) -> None:
        """Execute a claimed run with a heartbeat beside it, and report the outcome."""
        beat = asyncio.create_task(self._heartbeat(job), name=f"heartbeat:{job.run_id}")
        try:
            await self._execute(job)
        except asyncio.CancelledError:
            try:  # shutting down: hand the run back and queue its job again, so another runner starts at once
                async with session_scope(self.sessionmaker) as session:
                    await asyncio.wait_for(
                        runs.release_run(session, run_id=job.run_id, runner=self.name, job=job), 3)
            except Exception as exc:
                logger.warning("runner {} could not release run {}: {!r}", self.name, job.run_id, exc)
            raise
        except RunAborted as exc:
            logger.info("runner {} dropped scenario {} run {}: {}", self.name, job.scenario_id, job.run_id, exc)
        except Exception as exc:  # the source, the decoder or a detector failed: the orchestrator retries
            error = str(exc) if isinstance(exc, SourceError) else f"{type(exc).__name__}: {exc}"
            async with session_scope(self.sessionmaker) as session:
                await runs.fail_run(session, job=job, runner=self.name, error=error)
        finally:
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)

    async def _heartbeat(self, job: Job) -> None:
        """Stamp the run alive a few times per staleness bound, also while a slow source opens or a
        batch takes long (batches stamp it too)."""
        every = max(self.settings.scenario_stale_run_s / 3, 0.2)
        while True:
            await asyncio.sleep(every)
            try:
                async with session_scope(self.sessionmaker) as session:
                    if not await runs.heartbeat(session, run_id=job.run_id, runner=self.name):
                        return  # no longer ours; the next batch aborts
            except Exception as exc:  # a missed beat; the batch loop sees a real outage
                logger.warning("runner {} heartbeat for run {} failed: {!r}", self.name, job.run_id, exc)

    async def _execute(self, job: Job) -> None:
        try:
            params = ScenarioParams.model_validate(job.params)
        except ValidationError as exc:
            raise ValueError(f"invalid params: {exc.errors(include_url=False)}") from exc
        sample_fps = params.sample_fps or self.settings.scenario_sample_fps
        if job.source is None:  # the operator's own default (`--source`): trusted as the command line is
            target = self.settings.runner_source
            if not target:
                raise SourceError("the scenario has no source and this runner has no default (vigil runner --source)")
        else:
            try:  # again here: this runner's media root and allow-list are the ones that count
                target = await vet_source(job.source, self.sources)
            except SourceRefused as exc:
                raise SourceError(f"source refused: {exc}") from None
        source = await _blocking(lambda: VideoSource(target, sample_fps=sample_fps, max_frames=params.max_frames,
                                                     realtime=params.realtime, min_confidence=params.min_confidence))
        try:
            detectors = await _blocking(lambda: Detectors(params.detectors))
            async with session_scope(self.sessionmaker) as session:
                if not await runs.mark_active(session, run_id=job.run_id, runner=self.name):
                    raise RunAborted("the run was cancelled before it started")
            started = time.monotonic()
            batch_frames = 1  # the first frame's results are stored at once: early feedback, then full batches
            while True:
                batch = await _blocking(functools.partial(
                    source.read_batch, detectors, max_frames=batch_frames, max_seconds=BATCH_SECONDS))
                batch_frames = self.settings.scenario_batch_frames
                elapsed = time.monotonic() - started
                async with session_scope(self.sessionmaker) as session:
                    verdict = await runs.record_batch(
                        session, run_id=job.run_id, runner=self.name, predictions=batch.predictions,
                        frames_read=source.frames_read, frames_processed=source.frames_processed,
                        fps=round(source.frames_processed / elapsed, 2) if elapsed > 0 else None,
                    )
                if verdict == "abort":
                    raise RunAborted("the run was cancelled, taken over or deleted")
                if verdict == "stop" or batch.ended:
                    async with session_scope(self.sessionmaker) as session:
                        await runs.finish_run(session, run_id=job.run_id, runner=self.name,
                                                 stopped=verdict == "stop")
                    return
        finally:
            await asyncio.to_thread(source.close)


async def _blocking(fn: Callable[[], T]) -> T:
    """Run blocking OpenCV work in a thread; if cancelled, let that step finish before the capture is closed."""
    future = asyncio.ensure_future(asyncio.to_thread(fn))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.gather(future, return_exceptions=True)
        raise


async def run_runner(settings: Settings, *, name: str | None = None, stop: asyncio.Event | None = None) -> None:
    """Entry point of `vigil runner`: run until SIGINT/SIGTERM (or `stop`)."""
    import signal

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await ScenarioRunner(settings, name=name).run(stop)
