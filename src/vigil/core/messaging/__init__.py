"""Kafka / Redpanda messaging: the producer (`producer.py`), the consumer runner every domain uses
(`consumer.py`: manual commits, pause on outages, dead letters) and the outbox relay (`outbox.py`)."""

from aiokafka import ConsumerRecord

from vigil.core.messaging.consumer import ConsumerRunner, ConsumerSpec, PoisonMessage, parse_json
from vigil.core.messaging.outbox import OutboxEvent, OutboxRelay, emit, enqueue, envelope
from vigil.core.messaging.producer import EVENTS_TOPIC, BrokerUnavailable, Bus, RecordNotHeld, dumps, ensure_topics

__all__ = [
    "EVENTS_TOPIC",
    "BrokerUnavailable",
    "Bus",
    "ConsumerRecord",
    "ConsumerRunner",
    "ConsumerSpec",
    "OutboxEvent",
    "OutboxRelay",
    "PoisonMessage",
    "RecordNotHeld",
    "dumps",
    "emit",
    "enqueue",
    "ensure_topics",
    "envelope",
    "parse_json",
]
