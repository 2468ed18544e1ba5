"""The alerts table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Identity, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, Timestamps, UUIDPrimaryKey, utcnow

SEVERITIES = ("info", "warning", "critical")  # in rising order
STATUSES = ("open", "acknowledged", "resolved")
# "Active" = not resolved: the scope of the dedupe index, and of the upsert that relies on it.
ACTIVE_PREDICATE = "status <> 'resolved'"


class Alert(UUIDPrimaryKey, Timestamps, Base):
    """One alert. While not resolved, (source, kind, subject) is unique: a repeat updates it."""

    __tablename__ = "alerts"

    source: Mapped[str] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(200), default="", server_default="")
    severity: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(15), default="open", server_default="open")
    title: Mapped[str] = mapped_column(String(500))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    resolved_by: Mapped[str | None] = mapped_column(String(200), default=None)
    # People on alerts, and what the policies decided when it was raised (issue 16).
    assignee: Mapped[str | None] = mapped_column(String(200), default=None)
    # Raised outside every matching policy's active hours: stored, not notified.
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # A mute matched it when it was raised: stored and counted, not notified, not pushed as new.
    muted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    snoozed_until: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        CheckConstraint(f"severity IN {SEVERITIES}", name="severity"),
        CheckConstraint(f"status IN {STATUSES}", name="status"),
        # The dedupe rule, enforced by the database so concurrent raisers cannot create twins.
        Index("uq_alerts_active_subject", "source", "kind", "subject", unique=True,
              postgresql_where=text(ACTIVE_PREDICATE)),
        Index("ix_alerts_status_last_seen", "status", "last_seen_at"),
        Index("ix_alerts_source_last_seen", "source", "last_seen_at"),
        Index("ix_alerts_resolved_at", "resolved_at", postgresql_where=text("status = 'resolved'")),  # retention
    )


class AlertPolicy(UUIDPrimaryKey, Timestamps, Base):
    """What happens to the alerts it matches: notify, remind, escalate, resolve when quiet, and when."""

    __tablename__ = "alert_policies"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    match: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    notify: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default=text("'[]'::jsonb"))
    quiet_resolve_s: Mapped[int | None] = mapped_column(Integer, default=None)
    remind_every_s: Mapped[int | None] = mapped_column(Integer, default=None)
    escalate: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    schedule: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class AlertPolicyState(Base):
    """One policy's progress on one alert: escalation steps taken, last notification, when it is next due.

    Rows are made when an alert is raised (for the policies it matches) and when a policy is created or
    changed (for the active alerts it matches); the evaluator reads only the due ones.
    """

    __tablename__ = "alert_policy_states"

    alert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True)
    policy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alert_policies.id", ondelete="CASCADE"),
                                                 primary_key=True)
    steps_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    notified_at: Mapped[datetime | None] = mapped_column(default=None)
    # NULL: nothing left to do by time (no steps left, no reminders); quiet resolve is checked apart.
    next_due_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_alert_policy_states_due", "next_due_at", postgresql_where=text("next_due_at IS NOT NULL")),
        Index("ix_alert_policy_states_policy", "policy_id"),
    )


class AlertMute(UUIDPrimaryKey, Timestamps, Base):
    """Alerts matching `match` raised before `until` are stored and counted but not notified."""

    __tablename__ = "alert_mutes"

    match: Mapped[dict[str, Any]] = mapped_column(JSONB)
    until: Mapped[datetime] = mapped_column()
    created_by: Mapped[str | None] = mapped_column(String(200), default=None)

    __table_args__ = (Index("ix_alert_mutes_until", "until"),)


class AlertHistory(UUIDPrimaryKey, Base):
    """What happened to an alert, by whom: created, updated, acknowledged, commented, escalated, snoozed..."""

    __tablename__ = "alert_history"

    alert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    action: Mapped[str] = mapped_column(String(20))
    by: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    # Insertion order: entries of one pass share their `at`, and must still read back in order.
    seq: Mapped[int] = mapped_column(BigInteger, Identity())

    __table_args__ = (Index("ix_alert_history_alert_at", "alert_id", "at"),)
