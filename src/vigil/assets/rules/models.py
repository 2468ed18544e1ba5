"""Rule tables: the alert rules and, per asset and kind, whether a rule's condition currently holds."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from vigil.assets.types import SEVERITIES
from vigil.core.db import Base, Timestamps, UUIDPrimaryKey, utcnow

RULE_KINDS = ("low_battery", "missing", "maintenance_overdue")


class Rule(UUIDPrimaryKey, Timestamps, Base):
    """An alert rule for one asset, one site, or (neither) every asset; the most specific one wins."""

    __tablename__ = "asset_rules"

    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))
    site_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True,
                                                      default=None)
    asset_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"),
                                                       index=True, default=None)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    severity: Mapped[str] = mapped_column(String(10), default="warning", server_default="warning")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))

    __table_args__ = (
        CheckConstraint(f"kind IN {RULE_KINDS}", name="kind"),
        CheckConstraint(f"severity IN {SEVERITIES}", name="severity"),
        CheckConstraint("site_id IS NULL OR asset_id IS NULL", name="one_scope"),
    )


class RuleState(Base):
    """Whether a rule's condition currently holds for an asset, so an alert is raised once per episode."""

    __tablename__ = "asset_rule_states"

    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean)
    since: Mapped[datetime] = mapped_column(default=utcnow)
