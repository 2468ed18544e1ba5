"""What a sender is handed: the exporter it sends to (`Target`) and the deliveries it sends (`Outgoing`).

Plain snapshots, not ORM rows. Kept apart from `senders` (which calls `channels`), so `channels`
can name them without importing `senders` back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Target:
    """What a sender needs to know about an exporter (a snapshot, not the ORM row)."""

    id: uuid.UUID
    kind: str
    config: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One delivery to send: its id (for the delivery log), its event type and its payload."""

    delivery_id: uuid.UUID
    event_type: str
    payload: dict[str, Any]
