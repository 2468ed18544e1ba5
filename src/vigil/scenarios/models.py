"""Scenario tables: the scenario (its state and version), its transition history, its runs and predictions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vigil.core.db import Base, Timestamps, UUIDPrimaryKey, utcnow
from vigil.scenarios.states import RUN_STATUSES, STATUSES  # the table lives in states; here only CHECK constraints


class ScenarioRun(UUIDPrimaryKey, Timestamps, Base):
    """One attempt at processing a scenario's source: who runs it, how far it got, how it ended."""

    __tablename__ = "scenario_runs"

    scenario_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scenarios.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    runner: Mapped[str | None] = mapped_column(String(200), default=None)
    frames_read: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    frames_processed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    predictions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    fps: Mapped[float | None] = mapped_column(Float, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        CheckConstraint(f"status IN {RUN_STATUSES}", name="status"),
        Index("ix_scenario_runs_scenario_attempt", "scenario_id", "attempt"),
    )


class Scenario(UUIDPrimaryKey, Timestamps, Base):
    """A video source to analyse and where it stands in the state machine.

    `version` grows with every change; writers update `WHERE version = <what they read>`, so of two
    concurrent transitions only one can win. `current_run_id` names the run the runners work on.
    """

    __tablename__ = "scenarios"

    source: Mapped[str | None] = mapped_column(String(2048))  # None: the runner's default source
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    status: Mapped[str] = mapped_column(String(32), default="init_startup", server_default="init_startup")
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    # No foreign key: runs point at their scenario, and a cycle of keys would only complicate deletes.
    current_run_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), default=None)

    latest_run: Mapped[ScenarioRun | None] = relationship(
        ScenarioRun, primaryjoin="foreign(Scenario.current_run_id) == ScenarioRun.id", viewonly=True, lazy="raise",
    )

    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES}", name="status"),
        Index("ix_scenarios_status_created", "status", "created_at"),
    )


class ScenarioTransition(Base):
    """The history: every state change of a scenario, with why and by whom."""

    __tablename__ = "scenario_transitions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    scenario_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scenarios.id", ondelete="CASCADE"))
    from_status: Mapped[str | None] = mapped_column(String(32))  # None for the creation
    to_status: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)  # the scenario's version after the move
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    by: Mapped[str | None] = mapped_column(String(200), default=None)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_scenario_transitions_scenario_id", "scenario_id", "id"),)


class Prediction(Base):
    """One detection in one frame of one run."""

    __tablename__ = "scenario_predictions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    scenario_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scenarios.id", ondelete="CASCADE"))
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scenario_runs.id", ondelete="CASCADE"))
    frame: Mapped[int] = mapped_column(Integer)
    ts: Mapped[float] = mapped_column(Float)  # seconds from the start of the source
    label: Mapped[str] = mapped_column(String(32))  # "class" in the API
    confidence: Mapped[float] = mapped_column(Float)
    bbox: Mapped[list[int]] = mapped_column(ARRAY(Integer))  # [x, y, w, h] in source pixels
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_scenario_predictions_run_frame", "run_id", "frame"),
        Index("ix_scenario_predictions_scenario_id", "scenario_id"),
        Index("ix_scenario_predictions_created_at", "created_at"),  # retention
    )
