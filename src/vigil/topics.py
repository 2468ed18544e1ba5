"""Which topics the app uses, on which broker, with how many partitions.

Kept apart from vigil.registry (which imports every router) so a domain's service or runner can look a
topic up without depending on the whole app.
"""

from __future__ import annotations

from vigil.core.messaging import EVENTS_TOPIC

# Topics on the Kafka broker, with partitions. Work topics get several so runners can share them;
# `vigil.events` has one so every consumer sees the app's events in the order they happened.
KAFKA_TOPICS: dict[str, int] = {
    EVENTS_TOPIC: 1,
    "person_reid_alerts": 3,
    "scenarios": 3,
    "retry_topic": 3,
}
# Topics on the Redpanda side (the same broker in the dev stack).
REDPANDA_TOPICS: dict[str, int] = {"observations": 3}
