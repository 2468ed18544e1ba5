"""Alert policies: CRUD, what happens when an alert is raised, and the periodic evaluation pass.

One lifecycle for every source: `raise_alert` calls `on_created` for each new alert, in the same
transaction, and the evaluator (`alerts/evaluator.py`) calls `evaluate` every few seconds under a
PostgreSQL advisory lock, so one instance at a time escalates, reminds and resolves quiet alerts.
All state lives in `alert_policy_states` (one row per alert and matching policy), so a restart loses
nothing and a pass reads only what is due.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from loguru import logger
from sqlalchemy import delete, func, insert, literal, null, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.alerts.events import alert_json, announce, record
from vigil.alerts.matching import match_clause, matches, schedule_active
from vigil.alerts.models import SEVERITIES, Alert, AlertMute, AlertPolicy, AlertPolicyState
from vigil.alerts.schemas import PolicyCreate, PolicyUpdate
from vigil.core.crud import ensure_unique, get_or_404, null_not_allowed
from vigil.core.db import utcnow
from vigil.core.errors import NotFound, ValidationFailed
from vigil.core.messaging import envelope
from vigil.core.pagination import PageParams, paginate
from vigil.exporters import service as exporters

# pg_advisory_xact_lock key of the evaluation pass ("vigil-alert-policies", arbitrary but fixed).
LOCK_KEY = 0x76_69_67_69_6C_16
NOTIFICATION = "alert.notification"


class PolicyNotFound(NotFound):
    title = "Alert policy not found"


# --- CRUD ------------------------------------------------------------------------------------


async def _check_exporters(session: AsyncSession, policy_in: PolicyCreate | PolicyUpdate) -> None:
    """Every exporter id in notify (and in the escalation steps) must exist: else 422 unknown_reference."""
    refs: list[tuple[list[Any], uuid.UUID]] = [
        (["body", "notify", i], e) for i, e in enumerate(policy_in.notify or [])
    ]
    for s, step in enumerate(policy_in.escalate or []):
        refs += [(["body", "escalate", s, "notify", i], e) for i, e in enumerate(step.notify or [])]
    missing = set(await exporters.missing_exporters(session, exporter_ids=list({e for _, e in refs})))
    errors = [
        {"loc": loc, "msg": f"exporter {e} does not exist", "type": "unknown_reference"}
        for loc, e in refs
        if e in missing
    ]
    if errors:
        raise ValidationFailed("The policy names exporters that do not exist.", errors=errors)


async def _name_free(session: AsyncSession, name: str, exclude: uuid.UUID | None = None) -> None:
    await ensure_unique(session, AlertPolicy, name=name, exclude_id=exclude,
                        detail=f"An alert policy named {name!r} already exists.")


def _columns(policy_in: PolicyCreate | PolicyUpdate, *, partial: bool) -> dict[str, Any]:
    data = policy_in.model_dump(mode="json", exclude_unset=partial)
    if "match" in data and data["match"] is not None:
        data["match"] = {k: v for k, v in data["match"].items() if v is not None}
    if "escalate" in data and data["escalate"] is not None:
        data["escalate"] = sorted(
            ({k: v for k, v in step.items() if v is not None} for step in data["escalate"]),
            key=lambda step: step["after_s"],
        )
    return data


async def create_policy(session: AsyncSession, *, policy_in: PolicyCreate) -> AlertPolicy:
    """Create a policy; it applies at once to the active alerts it matches (from the next pass on)."""
    await _name_free(session, policy_in.name)
    await _check_exporters(session, policy_in)
    policy = AlertPolicy(
        id=uuid.uuid4(), created_at=utcnow(), updated_at=utcnow(), **_columns(policy_in, partial=False)
    )
    session.add(policy)
    await session.flush()
    await _attach_active(session, policy)
    logger.info("alert policy {} created ({!r}, match {})", policy.id, policy.name, policy.match)
    return policy


async def get_policy(session: AsyncSession, *, policy_id: uuid.UUID, lock: bool = False) -> AlertPolicy:
    """One policy or PolicyNotFound (404)."""
    return await get_or_404(session, AlertPolicy, policy_id, error=PolicyNotFound, with_for_update=lock)


async def list_policies(session: AsyncSession, *, page: PageParams, enabled: bool | None = None) -> dict:
    """Policies by name."""
    stmt = select(AlertPolicy)
    if enabled is not None:
        stmt = stmt.where(AlertPolicy.enabled == enabled)
    return await paginate(session, stmt.order_by(AlertPolicy.name, AlertPolicy.id), page)


async def update_policy(
    session: AsyncSession, *, policy_id: uuid.UUID, policy_in: PolicyUpdate
) -> AlertPolicy:
    """Partial update; the alerts it applies to are re-read, and their progress is re-evaluated next pass."""
    policy = await get_policy(session, policy_id=policy_id, lock=True)
    changes = _columns(policy_in, partial=True)
    if nulls := [n for n in ("name", "match", "notify", "escalate", "enabled") if n in changes and changes[n] is None]:
        raise null_not_allowed(nulls)
    if "name" in changes and changes["name"] != policy.name:
        await _name_free(session, changes["name"], exclude=policy.id)
    await _check_exporters(session, policy_in)
    for name, value in changes.items():
        setattr(policy, name, value)
    policy.updated_at = utcnow()
    await session.flush()
    # Alerts it no longer matches leave it; the ones it now matches join; all are due for a fresh look.
    await session.execute(
        delete(AlertPolicyState).where(
            AlertPolicyState.policy_id == policy.id,
            AlertPolicyState.alert_id.in_(select(Alert.id).where(~match_clause(policy.match, Alert))),
        )
    )
    await session.execute(
        update(AlertPolicyState)
        .where(AlertPolicyState.policy_id == policy.id, AlertPolicyState.alert_id == Alert.id)
        .values(next_due_at=_earliest_due(policy))
    )
    await _attach_active(session, policy)
    logger.info("alert policy {} updated ({})", policy.id, ", ".join(sorted(changes)))
    return policy


async def delete_policy(session: AsyncSession, *, policy: AlertPolicy) -> None:
    """Delete a policy and its progress on alerts (the alerts stay)."""
    policy_id = policy.id
    await session.delete(policy)
    await session.flush()
    logger.info("alert policy {} deleted", policy_id)


def _earliest_due(policy: AlertPolicy) -> Any:
    """SQL: the earliest an alert can need this policy by time (its first step or first reminder after
    creation), never later than the real next due time; NULL if the policy has nothing timed."""
    first_step = policy.escalate[0]["after_s"] if policy.escalate else None
    first = [s for s in (first_step, policy.remind_every_s) if s]
    if not first:
        return null()
    return Alert.created_at + func.make_interval(0, 0, 0, 0, 0, 0, min(first))


async def _attach_active(session: AsyncSession, policy: AlertPolicy) -> None:
    """Give the policy a state row on every active alert it matches (no notification: they are not new)."""
    candidates = select(Alert.id, literal(policy.id), literal(0), _earliest_due(policy)).where(
        Alert.status != "resolved", match_clause(policy.match, Alert)
    )
    await session.execute(
        pg_insert(AlertPolicyState)
        .from_select(["alert_id", "policy_id", "steps_done", "next_due_at"], candidates)
        .on_conflict_do_nothing()
    )


# --- decisions -------------------------------------------------------------------------------


def next_due(
    policy: AlertPolicy, *, created_at: datetime, steps_done: int, notified_at: datetime | None
) -> datetime | None:
    """When the policy next has something to do for an alert by time alone: a step or a reminder."""
    times = []
    if steps_done < len(policy.escalate):
        times.append(created_at + timedelta(seconds=policy.escalate[steps_done]["after_s"]))
    if policy.remind_every_s:
        times.append((notified_at or created_at) + timedelta(seconds=policy.remind_every_s))
    return min(times) if times else None


def active_mute(mutes: list[AlertMute], alert: Alert, now: datetime) -> AlertMute | None:
    """The mute that silences this alert now and lasts longest, if any."""
    found = [m for m in mutes if m.until > now and matches(m.match, alert)]
    return max(found, key=lambda m: m.until) if found else None


def _per_transaction(session: AsyncSession, name: str) -> tuple[Any, list[Any] | None]:
    """What `name` holds for the session's current transaction (None if not read in it yet)."""
    transaction = session.sync_session.get_transaction()
    held = session.info.get(name)
    return transaction, (held[1] if held is not None and held[0] is transaction else None)


async def _enabled_policies(session: AsyncSession) -> list[AlertPolicy]:
    """Enabled policies, read once per transaction: a consumer's batch raises many alerts in one."""
    transaction, policies = _per_transaction(session, "vigil.alerts.policies")
    if policies is None:
        policies = list((await session.scalars(select(AlertPolicy).where(AlertPolicy.enabled))).all())
        session.info["vigil.alerts.policies"] = (transaction, policies)
    return policies


async def _active_mutes(session: AsyncSession, now: datetime) -> list[AlertMute]:
    """Mutes not over at `now`, read once per transaction (`active_mute` checks `until` again)."""
    transaction, mutes = _per_transaction(session, "vigil.alerts.mutes")
    if mutes is None:
        mutes = list((await session.scalars(select(AlertMute).where(AlertMute.until > now))).all())
        session.info["vigil.alerts.mutes"] = (transaction, mutes)
    return mutes


def _notification(alert: Alert, policy: AlertPolicy, reason: str, **extra: Any) -> dict[str, Any]:
    return envelope(
        NOTIFICATION,
        {
            "alert": alert_json(alert),
            "policy": {"id": str(policy.id), "name": policy.name},
            "reason": reason,
            **extra,
        },
    )


Outgoing = list[tuple[list[uuid.UUID], dict[str, Any]]]


def _notify(
    outgoing: Outgoing, alert: Alert, policy: AlertPolicy, targets: list[str], reason: str, **extra: Any
) -> int:
    """Collect one notification (queued in one go at the end); returns how many channels it names."""
    ids = [uuid.UUID(str(t)) for t in targets]
    if ids:
        outgoing.append((ids, _notification(alert, policy, reason, **extra)))
    return len(ids)


async def on_created(session: AsyncSession, alert: Alert, *, now: datetime) -> bool:
    """A new alert: mark it muted/suppressed, notify the matching policies' channels, start their clocks.

    Returns True when the alert must not be pushed as new (muted, or outside every matching schedule).
    """
    policies = [p for p in await _enabled_policies(session) if matches(p.match, alert)]
    mute = active_mute(await _active_mutes(session, now), alert, now)
    in_hours = [p for p in policies if schedule_active(p.schedule, now)]
    alert.muted = mute is not None
    alert.suppressed = bool(policies) and not in_hours
    notified: list[str] = []
    states = []
    outgoing: Outgoing = []
    for policy in policies:
        notified_at = None
        if not alert.muted and policy in in_hours:
            if _notify(outgoing, alert, policy, policy.notify, "created"):
                notified.append(policy.name)
            notified_at = now
        due = next_due(policy, created_at=alert.created_at, steps_done=0, notified_at=notified_at)
        if mute is not None and due is not None:
            due = max(due, mute.until)
        states.append(
            {
                "alert_id": alert.id,
                "policy_id": policy.id,
                "steps_done": 0,
                "notified_at": notified_at,
                "next_due_at": due,
            }
        )
    if states:
        await session.execute(insert(AlertPolicyState), states)
    if outgoing:
        await exporters.enqueue_notifications(session, notifications=outgoing)
    if alert.muted or alert.suppressed:
        await session.flush()
    record(
        session,
        alert,
        "created",
        by="system",
        at=now,
        detail={
            "severity": alert.severity,
            "policies": [p.name for p in policies],
            "notified": notified,
            "muted": alert.muted,
            "suppressed": alert.suppressed,
            **({"mute_id": str(mute.id)} if mute is not None else {}),
        },
    )
    return alert.muted or alert.suppressed


async def postpone(session: AsyncSession, *, alert_id: uuid.UUID, until: datetime) -> None:
    """Nothing time-driven happens to this alert before `until` (a snooze)."""
    await session.execute(
        update(AlertPolicyState)
        .where(AlertPolicyState.alert_id == alert_id, AlertPolicyState.next_due_at.is_not(None))
        .values(next_due_at=func.greatest(AlertPolicyState.next_due_at, until))
    )


# --- the evaluation pass ---------------------------------------------------------------------


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


async def evaluate(
    session: AsyncSession, *, now: datetime | None = None, batch: int = 1000, retry_in_s: float = 5.0
) -> dict[str, int] | None:
    """One pass: resolve quiet alerts, take due escalation steps, send due reminders.

    Runs under a transaction-scoped advisory lock: returns None at once if another instance holds it.
    Reads only what is due (indexed), at most `batch` rows of each kind; returns counts of what it did.
    """
    if not await session.scalar(select(func.pg_try_advisory_xact_lock(LOCK_KEY))):
        return None
    now = now or utcnow()
    counts = {"resolved": 0, "escalated": 0, "reminded": 0, "deferred": 0, "finished": 0, "due": 0}
    policies = {
        p.id: p for p in (await session.scalars(select(AlertPolicy).where(AlertPolicy.enabled))).all()
    }
    if not policies:
        return counts
    await _quiet_resolve(session, policies, now=now, batch=batch, counts=counts)
    await session.flush()  # before _due, which writes its rows in bulk and lets go of the objects
    await _due(session, policies, now=now, batch=batch, retry_in_s=retry_in_s, counts=counts)
    await session.flush()
    return counts


async def _quiet_resolve(
    session: AsyncSession,
    policies: dict[uuid.UUID, AlertPolicy],
    *,
    now: datetime,
    batch: int,
    counts: dict[str, int],
) -> None:
    quiet = [p for p in policies.values() if p.quiet_resolve_s]
    if not quiet:
        return
    # One statement for every policy: alerts whose last sighting is older than their policy's quiet time.
    # Per alert, the quiet policy that lets go first (one row per alert, so a batch is `batch` alerts).
    policy_id = (
        select(AlertPolicyState.policy_id)
        .join(AlertPolicy, AlertPolicy.id == AlertPolicyState.policy_id)
        .where(
            AlertPolicyState.alert_id == Alert.id,
            AlertPolicy.enabled,
            AlertPolicy.quiet_resolve_s.is_not(None),
            Alert.last_seen_at
            < literal(now) - func.make_interval(0, 0, 0, 0, 0, 0, AlertPolicy.quiet_resolve_s),
        )
        .order_by(AlertPolicy.quiet_resolve_s, AlertPolicy.name)
        .limit(1)
        .correlate(Alert)
        .scalar_subquery()
    )
    # A cheap filter first: nothing can be quiet for less than the shortest quiet time, so an idle pass
    # does not run the per-alert lookup for every active alert.
    shortest = min(p.quiet_resolve_s or 0 for p in quiet)
    stmt = (
        select(Alert, policy_id.label("policy_id"))
        .where(
            Alert.status != "resolved",
            Alert.last_seen_at < now - timedelta(seconds=shortest),
            policy_id.is_not(None),
        )
        .order_by(Alert.last_seen_at)
        .limit(batch)
        .with_for_update(of=Alert, skip_locked=True)
    )
    done: set[uuid.UUID] = set()
    for alert, matched_policy_id in (await session.execute(stmt)).all():
        policy = policies.get(matched_policy_id)
        if alert.id in done or policy is None:
            continue
        done.add(alert.id)
        by = f"policy:{policy.name}"
        alert.status, alert.resolved_at, alert.resolved_by = "resolved", now, by
        record(
            session,
            alert,
            "resolved",
            by=by,
            at=now,
            detail={
                "reason": "quiet",
                "quiet_resolve_s": policy.quiet_resolve_s,
                "last_seen_at": alert.last_seen_at.isoformat(),
            },
        )
        announce(session, alert, created=False)
        counts["resolved"] += 1
    if done:
        await session.execute(
            update(AlertPolicyState).where(AlertPolicyState.alert_id.in_(done)).values(next_due_at=None)
        )


async def _due(
    session: AsyncSession,
    policies: dict[uuid.UUID, AlertPolicy],
    *,
    now: datetime,
    batch: int,
    retry_in_s: float,
    counts: dict[str, int],
) -> None:
    rows = (
        await session.execute(
            select(AlertPolicyState, Alert)
            .join(Alert, Alert.id == AlertPolicyState.alert_id)
            .where(AlertPolicyState.next_due_at <= now)
            .order_by(AlertPolicyState.next_due_at)
            .limit(batch)
            .with_for_update(of=[AlertPolicyState, Alert], skip_locked=True)
        )
    ).all()
    if not rows:
        return
    counts["due"] = len(rows)
    mutes = await _active_mutes(session, now)
    changed: dict[uuid.UUID, Alert] = {}
    outgoing: Outgoing = []
    for state, alert in rows:
        policy = policies.get(state.policy_id)
        if policy is None or alert.status != "open":
            state.next_due_at = (
                None  # disabled policy (re-armed when enabled), acknowledged or resolved alert
            )
            counts["finished"] += 1
            continue
        hold = [t for t in (alert.snoozed_until,) if t is not None and t > now]
        mute = active_mute(mutes, alert, now)
        if mute is not None:
            hold.append(mute.until)
        if not schedule_active(policy.schedule, now):
            hold.append(now + timedelta(seconds=retry_in_s))
        if hold:
            state.next_due_at = max(hold)
            counts["deferred"] += 1
            continue
        by = f"policy:{policy.name}"
        stepped = False
        while state.steps_done < len(policy.escalate):
            step = policy.escalate[state.steps_done]
            if alert.created_at + timedelta(seconds=step["after_s"]) > now:
                break
            state.steps_done += 1
            before = alert.severity
            if step.get("severity") and _rank(step["severity"]) > _rank(alert.severity):
                alert.severity = step["severity"]
            targets = step.get("notify") or policy.notify
            sent = _notify(outgoing, alert, policy, targets, "escalated", step=state.steps_done)
            record(
                session,
                alert,
                "escalated",
                by=by,
                at=now,
                detail={
                    "step": state.steps_done,
                    "after_s": step["after_s"],
                    "from_severity": before,
                    "severity": alert.severity,
                    "notified": sent,
                },
            )
            changed[alert.id] = alert
            stepped = True
            counts["escalated"] += 1
        if stepped:
            state.notified_at = now
        elif (
            policy.remind_every_s
            and (state.notified_at or alert.created_at) + timedelta(seconds=policy.remind_every_s) <= now
        ):
            sent = _notify(outgoing, alert, policy, policy.notify, "reminder")
            record(session, alert, "reminded", by=by, at=now, detail={"notified": sent})
            state.notified_at = now
            changed[alert.id] = alert
            counts["reminded"] += 1
        state.next_due_at = next_due(
            policy,
            created_at=alert.created_at,
            steps_done=state.steps_done,
            notified_at=state.notified_at or now,
        )
    for alert in changed.values():
        alert.updated_at = now
        announce(session, alert, created=False)
    # Written as two executemany UPDATEs (uniform rows), not one UPDATE per changed object: the ORM's
    # flush splits rows with different changed columns into many small batches.
    state_rows = [
        {
            "alert_id": st.alert_id,
            "policy_id": st.policy_id,
            "steps_done": st.steps_done,
            "notified_at": st.notified_at,
            "next_due_at": st.next_due_at,
        }
        for st, _ in rows
    ]
    alert_rows = [{"id": a.id, "severity": a.severity, "updated_at": now} for a in changed.values()]
    for st, alert in rows:
        for obj in (st, alert):
            if obj in session:
                session.expunge(obj)
    await session.execute(update(AlertPolicyState), state_rows)
    if alert_rows:
        await session.execute(update(Alert), alert_rows)
    if outgoing:
        await exporters.enqueue_notifications(session, notifications=outgoing)


__all__ = [
    "LOCK_KEY",
    "NOTIFICATION",
    "PolicyNotFound",
    "active_mute",
    "create_policy",
    "delete_policy",
    "evaluate",
    "get_policy",
    "list_policies",
    "next_due",
    "on_created",
    "postpone",
    "update_policy",
]
