"""Dead letters: count what waits in every `<topic>.dlq` and replay it to the original topic.

A replay reads a DLQ with the consumer group `vigil-dlq-replay`, re-publishes each dead letter to
the topic it came from (same key and value, its `x-original-*` headers kept, `x-replayed-from`
added), waits for the broker's acknowledgement, and only then commits the group's offsets: a dead
letter is replayed once, and a second replay sends nothing again. "Waiting" is the part of a DLQ
past the replay group's committed offset.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from vigil.core.messaging.producer import Bus

DLQ_SUFFIX = ".dlq"
REPLAY_GROUP = "vigil-dlq-replay"


@dataclass(frozen=True)
class DeadLetterTopic:
    topic: str  # the original topic
    dlq_topic: str
    count: int  # dead letters not replayed yet


def dlq_topic_of(topic: str) -> str:
    """`observations` and `observations.dlq` both name the dead letters of `observations`."""
    return topic if topic.endswith(DLQ_SUFFIX) else topic + DLQ_SUFFIX


def _consumer(bootstrap: str, timeout_s: float) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=REPLAY_GROUP, enable_auto_commit=False,
                            auto_offset_reset="earliest", request_timeout_ms=int(timeout_s * 1000),
                            fetch_max_wait_ms=100)


async def _waiting(consumer: AIOKafkaConsumer, dlq: str) -> dict[TopicPartition, tuple[int, int]]:
    """Per partition of a DLQ: (first offset not replayed, end offset)."""
    partitions = consumer.partitions_for_topic(dlq) or set()
    tps = [TopicPartition(dlq, p) for p in sorted(partitions)]
    if not tps:
        return {}
    ends = await consumer.end_offsets(tps)
    starts = await consumer.beginning_offsets(tps)
    out = {}
    for tp in tps:
        committed = await consumer.committed(tp)
        out[tp] = (max(committed if committed is not None else 0, starts[tp]), ends[tp])
    return out


async def dead_letter_counts(bootstrap: str, *, timeout_s: float = 10.0) -> list[DeadLetterTopic]:
    """Every DLQ topic on this broker with how many dead letters wait to be replayed."""
    consumer = _consumer(bootstrap, timeout_s)
    await asyncio.wait_for(consumer.start(), timeout_s)
    try:
        topics = sorted(t for t in await consumer.topics() if t.endswith(DLQ_SUFFIX))
        out = []
        for dlq in topics:
            waiting = await _waiting(consumer, dlq)
            out.append(DeadLetterTopic(topic=dlq[: -len(DLQ_SUFFIX)], dlq_topic=dlq,
                                       count=sum(max(end - start, 0) for start, end in waiting.values())))
        return out
    finally:
        await consumer.stop()


async def replay_dead_letters(bus: Bus, bootstrap: str, topic: str, *, limit: int | None = None,
                              timeout_s: float = 10.0) -> int:
    """Re-publish up to `limit` waiting dead letters of `topic` to where they came from; returns how
    many. Offsets are committed after the broker acknowledged, so nothing is replayed twice."""
    dlq = dlq_topic_of(topic)
    consumer = _consumer(bootstrap, timeout_s)
    await asyncio.wait_for(consumer.start(), timeout_s)
    replayed = 0
    try:
        if dlq not in await consumer.topics():
            return 0
        waiting = {tp: se for tp, se in (await _waiting(consumer, dlq)).items() if se[1] > se[0]}
        if not waiting:
            return 0
        consumer.assign(list(waiting))
        for tp, (start, _) in waiting.items():
            consumer.seek(tp, start)
        loop = asyncio.get_running_loop()
        for tp, (start, end) in sorted(waiting.items(), key=lambda kv: kv[0].partition):
            position = start
            deadline = loop.time() + timeout_s
            while position < end and (limit is None or replayed < limit):
                if loop.time() > deadline:
                    raise TimeoutError(f"could not read {dlq}[{tp.partition}] up to offset {end}")
                batch = (await consumer.getmany(tp, timeout_ms=500, max_records=200)).get(tp, [])
                futures: list[tuple[int, asyncio.Future[Any]]] = []
                for record in batch:
                    if record.offset >= end or (limit is not None and replayed + len(futures) >= limit):
                        break
                    headers = dict(record.headers or ())
                    original = headers.get("x-original-topic", b"").decode() or dlq[: -len(DLQ_SUFFIX)]
                    kept = [(k, v) for k, v in (record.headers or ()) if k != "x-replayed-from"]
                    kept.append(("x-replayed-from", f"{dlq}[{tp.partition}]@{record.offset}".encode()))
                    futures.append((record.offset, await bus.send(original, record.value or b"", key=record.key,
                                                                    headers=kept)))
                if futures:
                    await asyncio.gather(*(f for _, f in futures))
                    position = futures[-1][0] + 1
                    await consumer.commit({tp: OffsetAndMetadata(position, "")})
                    replayed += len(futures)
                    deadline = loop.time() + timeout_s
                elif batch:
                    break  # the batch was past `end` or the limit
            if limit is not None and replayed >= limit:
                break
        return replayed
    finally:
        await consumer.stop()
