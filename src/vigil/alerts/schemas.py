"""Alert API models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vigil.alerts.matching import DAYS, parse_hhmm
from vigil.core.schemas import Input
from vigil.core.types import UtcDatetime

Severity = Literal["critical", "warning", "info"]
Status = Literal["open", "acknowledged", "resolved"]


class AlertRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    source: str
    kind: str
    subject: str
    severity: Severity
    status: Status
    title: str
    data: dict[str, Any]
    count: int
    created_at: datetime
    last_seen_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    assignee: str | None = None
    suppressed: bool = False
    muted: bool = False
    snoozed_until: datetime | None = None


class RecentMessage(BaseModel):
    """A raw message as it arrived on an alert topic; `value` is its JSON, or its text if not JSON."""

    topic: str
    partition: int
    offset: int
    key: str | None
    timestamp: datetime | None
    received_at: datetime
    value: Any


# --- people on alerts ------------------------------------------------------------------------


# Request bodies: unknown fields refused, JSON types kept apart (0 is not false).


class AlertUpdate(Input):
    assignee: str | None = Field(None, max_length=200, description="Free text or a key name; null unassigns")


class SnoozeIn(Input):
    until: UtcDatetime


class CommentIn(Input):
    text: str = Field(min_length=1, max_length=10_000)


class CommentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    alert_id: uuid.UUID
    at: datetime
    by: str
    text: str


class HistoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    action: str
    by: str
    detail: dict[str, Any]


# --- policies and mutes ----------------------------------------------------------------------


class Match(Input):
    source: str | None = Field(None, min_length=1, max_length=50)
    kind: str | None = Field(None, min_length=1, max_length=100)
    severity: Severity | None = None
    subject: str | None = Field(None, min_length=1, max_length=200, description="A glob: * ? [..]")
    zone_id: str | None = Field(None, min_length=1, max_length=100)
    camera_id: str | None = Field(None, min_length=1, max_length=100)
    site_id: str | None = Field(None, min_length=1, max_length=100)


class EscalationStep(Input):
    after_s: int = Field(ge=1, le=366 * 86400, description="Seconds after the alert was created")
    severity: Severity | None = None
    notify: list[uuid.UUID] | None = Field(None, max_length=50,
                                           description="Exporter ids; the policy's when unset")


TimeRange = list[str]


class Schedule(Input):
    tz: str = Field(min_length=1, max_length=100, description="IANA time zone, e.g. Europe/Paris")
    days: dict[str, list[TimeRange]] = Field(description='{"mon": [["08:00", "18:00"]], ...}; end <= start '
                                                         "crosses midnight")
    except_dates: list[str] = Field(default_factory=list, max_length=1000, description="YYYY-MM-DD, local")

    @field_validator("tz")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone") from None
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: dict[str, list[TimeRange]]) -> dict[str, list[TimeRange]]:
        for day, ranges in value.items():
            if day not in DAYS:
                raise ValueError(f"{day!r} is not a weekday ({', '.join(DAYS)})")
            if len(ranges) > 24:
                raise ValueError("at most 24 ranges per day")
            for item in ranges:
                if len(item) != 2:
                    raise ValueError("a range is [start, end]")
                parse_hhmm(item[0])
                parse_hhmm(item[1])
        return value

    @field_validator("except_dates")
    @classmethod
    def _dates(cls, value: list[str]) -> list[str]:
        from datetime import date

        for item in value:
            try:
                date.fromisoformat(item)
            except ValueError:
                raise ValueError(f"{item!r} is not a date YYYY-MM-DD") from None
            if len(item) != 10:
                raise ValueError(f"{item!r} is not a date YYYY-MM-DD")
        return value


class PolicyCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    match: Match = Field(default_factory=Match)
    notify: list[uuid.UUID] = Field(default_factory=list, max_length=50, description="Exporter ids")
    quiet_resolve_s: int | None = Field(None, ge=1, le=366 * 86400)
    remind_every_s: int | None = Field(None, ge=1, le=366 * 86400)
    escalate: list[EscalationStep] = Field(default_factory=list, max_length=20)
    schedule: Schedule | None = None
    enabled: bool = True


class PolicyUpdate(Input):
    name: str | None = Field(None, min_length=1, max_length=200)
    match: Match | None = None
    notify: list[uuid.UUID] | None = Field(None, max_length=50)
    quiet_resolve_s: int | None = Field(None, ge=1, le=366 * 86400)
    remind_every_s: int | None = Field(None, ge=1, le=366 * 86400)
    escalate: list[EscalationStep] | None = Field(None, max_length=20)
    schedule: Schedule | None = None
    enabled: bool | None = None


class PolicyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    match: dict[str, Any]
    notify: list[uuid.UUID]
    quiet_resolve_s: int | None
    remind_every_s: int | None
    escalate: list[dict[str, Any]]
    schedule: dict[str, Any] | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


class MuteCreate(Input):
    match: Match
    until: UtcDatetime


class MuteRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    match: dict[str, Any]
    until: datetime
    created_by: str | None
    created_at: datetime
