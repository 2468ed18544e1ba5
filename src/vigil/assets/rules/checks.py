"""Alert rules kept as rows: low battery (with hysteresis), missing tag, maintenance overdue.

A rule applies to one asset, to the assets of one site, or (neither set) to every asset; for each asset
and kind the most specific rule wins, and a disabled one switches that kind off for its scope. The
periodic check compares each condition with the stored per-asset state, so an alert is raised once when
a condition starts and resolved once when it ends. Maintenance overdue needs no rule (default severity
`warning`); a rule of that kind can change its severity, add a grace period or switch it off.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loguru import logger
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.alerts import service as alerts
from vigil.assets.assets.models import Asset
from vigil.assets.maintenance.models import Maintenance
from vigil.assets.maintenance.service import maintenance_subject
from vigil.assets.rules.models import Rule, RuleState

# Per kind: parameter -> (default, minimum, maximum).
PARAMS: dict[str, dict[str, tuple[float, float, float]]] = {
    "low_battery": {"threshold": (20.0, 0.0, 100.0), "hysteresis": (5.0, 0.0, 50.0)},
    "missing": {"minutes": (10.0, 0.01, 60.0 * 24 * 30)},
    "maintenance_overdue": {"grace_minutes": (0.0, 0.0, 60.0 * 24 * 365)},
}
DEFAULT_MAINTENANCE = {"severity": "warning", "enabled": True, "params": {"grace_minutes": 0.0}}
CHECK_LOCK = 0x56494731  # pg advisory lock id: one rule check at a time across instances


def validate_params(kind: str, params: dict[str, float]) -> tuple[dict[str, float], list[str]]:
    """Fill defaults and check ranges; returns the full params and the problems found."""
    spec = PARAMS[kind]
    problems = [f"unknown parameter {name!r} for {kind} (expected {', '.join(spec)})"
                for name in params if name not in spec]
    out = {}
    for name, (default, low, high) in spec.items():
        value = float(params.get(name, default))
        if not low <= value <= high:
            problems.append(f"{name} must be between {low:g} and {high:g}")
        out[name] = value
    return out, problems


@dataclass(frozen=True, slots=True)
class Effective:
    severity: str
    enabled: bool
    params: dict[str, float]


class RuleIndex:
    """Rules by scope, built once per check: the most specific rule of a kind for an asset is its own,
    else its site's, else a global one (the newest wins within a scope); params validated once."""

    def __init__(self, rules: list[Rule]) -> None:
        self._by_scope: dict[tuple[str, str, uuid.UUID | None], Effective] = {}
        for rule in sorted(rules, key=lambda r: r.created_at):
            scope = ("asset", rule.asset_id) if rule.asset_id else ("site", rule.site_id) if rule.site_id \
                else ("global", None)
            params, _ = validate_params(rule.kind, rule.params)
            self._by_scope[(rule.kind, *scope)] = Effective(rule.severity, rule.enabled, params)

    def effective(self, kind: str, *, asset_id: uuid.UUID, site_id: uuid.UUID | None) -> Effective | None:
        """The rule of `kind` that applies to the asset (its own, else its site's, else global), if any."""
        return (self._by_scope.get((kind, "asset", asset_id))
                or (self._by_scope.get((kind, "site", site_id)) if site_id is not None else None)
                or self._by_scope.get((kind, "global", None)))


def low_battery_holds(battery: float | None, *, active: bool, threshold: float, hysteresis: float) -> bool:
    """Below the threshold starts it; only back above threshold + hysteresis ends it."""
    if battery is None:
        return active
    return battery < threshold + hysteresis if active else battery < threshold


def missing_holds(last_seen: datetime, *, now: datetime, minutes: float) -> bool:
    """A tag is missing once it has not been heard for more than `minutes`."""
    return now - last_seen > timedelta(minutes=minutes)


def asset_subject(asset_id: uuid.UUID) -> str:
    """The alert subject of a per-asset rule, so raising and resolving it name the same alert."""
    return f"asset:{asset_id}"


@dataclass
class CheckResult:
    raised: int = 0
    resolved: int = 0


async def check_rules(session: AsyncSession, *, now: datetime) -> CheckResult:
    """Evaluate every rule against every asset once; raise and resolve alerts on state changes."""
    result = CheckResult()
    # Another instance is checking right now: its pass covers this one.
    if not await session.scalar(text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": CHECK_LOCK}):
        return result
    rules = RuleIndex(list((await session.scalars(select(Rule))).all()))
    states = {(s.asset_id, s.kind): s for s in (await session.scalars(select(RuleState))).all()}
    assets = (await session.scalars(select(Asset))).all()
    for asset in assets:
        for kind in ("low_battery", "missing"):
            rule = rules.effective(kind, asset_id=asset.id, site_id=asset.site_id)
            state = states.get((asset.id, kind))
            was = bool(state and state.active)
            if rule is None or not rule.enabled:
                holds = False
            elif kind == "low_battery":
                holds = low_battery_holds(asset.battery, active=was, threshold=rule.params["threshold"],
                                          hysteresis=rule.params["hysteresis"])
            else:
                holds = missing_holds(asset.last_seen_at or asset.created_at, now=now,
                                      minutes=rule.params["minutes"])
            if holds == was:
                continue
            await session.execute(
                insert(RuleState).values(asset_id=asset.id, kind=kind, active=holds, since=now)
                .on_conflict_do_update(index_elements=[RuleState.asset_id, RuleState.kind],
                                       set_={"active": holds, "since": now}))
            if holds:
                if rule is None:
                    raise AssertionError()
                await alerts.raise_alert(session, source="asset", kind=kind, severity=rule.severity,
                                         subject=asset_subject(asset.id), title=_title(kind, asset, rule),
                                         data=_data(kind, asset, rule), at=now)
                result.raised += 1
            else:
                await alerts.resolve_active(session, source="asset", kind=kind,
                                            subject=asset_subject(asset.id))
                result.resolved += 1
            logger.info("rule {} {} for asset {} ({})", kind, "raised" if holds else "resolved", asset.id,
                        asset.tag_id)
    by_id = {a.id: a for a in assets}
    result.raised += await _maintenance_overdue(session, rules=rules, assets=by_id, now=now)
    return result


async def _maintenance_overdue(session: AsyncSession, *, rules: RuleIndex, assets: dict[uuid.UUID, Asset],
                               now: datetime) -> int:
    """Raise once per overdue record; the record remembers it (resolved when done or moved later)."""
    records = (await session.scalars(
        select(Maintenance).where(Maintenance.done_at.is_(None), Maintenance.overdue_alerted_at.is_(None),
                                  Maintenance.due_at < now).order_by(Maintenance.due_at)
    )).all()
    raised = 0
    for record in records:
        asset = assets.get(record.asset_id)
        if asset is None:
            continue
        rule = rules.effective("maintenance_overdue", asset_id=asset.id, site_id=asset.site_id)
        rule = rule or Effective(**DEFAULT_MAINTENANCE)  # type: ignore[arg-type]
        if not rule.enabled or record.due_at + timedelta(minutes=rule.params["grace_minutes"]) >= now:
            continue
        await alerts.raise_alert(
            session, source="asset", kind="maintenance_overdue", severity=rule.severity,
            subject=maintenance_subject(record.id), at=now,
            title=f"{record.kind} of {asset.name} ({asset.tag_id}) is overdue",
            data={"asset_id": str(asset.id), "tag_id": asset.tag_id, "maintenance_id": str(record.id),
                  "kind": record.kind, "due_at": record.due_at.isoformat()},
        )
        record.overdue_alerted_at = now
        raised += 1
        logger.info("maintenance {} of asset {} overdue since {}", record.id, asset.id,
                    record.due_at.isoformat())
    await session.flush()
    return raised


def _title(kind: str, asset: Asset, rule: Effective) -> str:
    if kind == "low_battery":
        return f"{asset.name} ({asset.tag_id}) battery low: {asset.battery:g}%"
    return f"{asset.name} ({asset.tag_id}) not seen for {rule.params['minutes']:g} minutes"


def _data(kind: str, asset: Asset, rule: Effective) -> dict[str, Any]:
    data: dict[str, Any] = {"asset_id": str(asset.id), "tag_id": asset.tag_id, "rule": kind, **rule.params}
    if kind == "low_battery":
        data["battery"] = asset.battery
    else:
        data["last_seen_at"] = asset.last_seen_at and asset.last_seen_at.isoformat()
    return data
