"""Alert rules: raise (deduplicated upsert), acknowledge, resolve, assign, comment, snooze, mute; every
change announced via the outbox and kept in the alert's history.

Other domains call `raise_alert` and `resolve_active`; nothing else writes the alerts table. Policies
(`alerts/policies.py`) act on the alerts `raise_alert` creates, in the same transaction.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Required, TypedDict

from redis.asyncio import Redis
from sqlalchemy import Select, bindparam, case, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from vigil.alerts import policies
from vigil.alerts.events import announce, record
from vigil.alerts.models import ACTIVE_PREDICATE, SEVERITIES, Alert, AlertHistory, AlertMute
from vigil.alerts.schemas import AlertRead, MuteCreate
from vigil.core.context import AppContext
from vigil.core.crud import get_or_404
from vigil.core.db import utcnow
from vigil.core.errors import InvalidState, NotFound, ValidationFailed
from vigil.core.pagination import PageParams, paginate, read_columns
from vigil.core.reads import Reads
from vigil.core.retention import RetentionPolicy, delete_chunk

ACTIVE = text(ACTIVE_PREDICATE)


class AlertNotFound(NotFound):
    title = "Alert not found"


def _rank(column: Any) -> Any:
    return case({s: i for i, s in enumerate(SEVERITIES)}, value=column, else_=0)


def _upsert() -> ReturningInsert[Alert, bool]:
    """INSERT ... ON CONFLICT against the partial unique index of active alerts, built once: a repeat
    adds to `count`, moves `last_seen_at`, keeps the higher severity and takes the newest title and data."""
    stmt = insert(Alert)
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[Alert.source, Alert.kind, Alert.subject],
        index_where=ACTIVE,  # a literal: it must match the partial index's predicate
        set_={
            "count": Alert.count + 1,
            "last_seen_at": func.greatest(Alert.last_seen_at, excluded.last_seen_at),
            "severity": case((_rank(excluded.severity) > _rank(Alert.severity), excluded.severity),
                             else_=Alert.severity),
            "title": excluded.title,
            "data": excluded.data,
            "updated_at": excluded.updated_at,
        },
    ).returning(Alert, literal_column("xmax = 0").label("inserted"))


_UPSERT = _upsert()
_READ_COLUMNS = read_columns(Alert, AlertRead)


class AlertSpec(TypedDict, total=False):
    """The arguments of one `raise_alert`: source, kind, severity and title are required."""

    source: Required[str]
    kind: Required[str]
    severity: Required[str]
    title: Required[str]
    subject: str
    data: dict[str, Any] | None
    at: datetime | None


def _rounds(specs: Sequence[AlertSpec]) -> list[list[int]]:
    """Split the specs (by index, order kept) so that no round holds the same (source, kind, subject)
    twice: one ON CONFLICT statement cannot touch a row twice, and a repeat must see the first."""
    rounds: list[list[int]] = []
    seen: dict[tuple[str, str, str], int] = {}
    for i, spec in enumerate(specs):
        key = (spec["source"], spec["kind"], spec.get("subject", ""))
        n = seen.get(key, 0)
        seen[key] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(i)
    return rounds


async def raise_alerts(session: AsyncSession, specs: Sequence[AlertSpec]) -> list[tuple[Alert, bool]]:
    """Open or bump many alerts in one statement per round (one round unless a subject repeats).

    Each spec does exactly what `raise_alert` would do, in order: a repeat of the same (source, kind,
    subject) later in `specs` counts on top of the earlier one and is announced as an update, and
    each new alert goes through the policies and mutes. Returns (alert, created) per spec, in order.
    """
    for spec in specs:
        if spec["severity"] not in SEVERITIES:
            raise ValidationFailed(f"severity must be one of {', '.join(SEVERITIES)}")
    now = utcnow()
    out: list[tuple[Alert, bool] | None] = [None] * len(specs)
    for indexes in _rounds(specs):
        keys = [(specs[i]["source"], specs[i]["kind"], specs[i].get("subject", "")) for i in indexes]
        rows = [
            {
                "id": uuid.uuid4(), "source": spec["source"], "kind": spec["kind"],
                "subject": spec.get("subject", ""), "severity": spec["severity"], "status": "open",
                "title": spec["title"], "data": spec.get("data") or {}, "count": 1,
                "last_seen_at": spec.get("at") or now, "created_at": now, "updated_at": now,
            }
            for spec in (specs[i] for i in indexes)
        ]
        result = await session.execute(_UPSERT, rows, execution_options={"populate_existing": True})
        # One batched statement; RETURNING's order is not the rows' order (asking for it makes
        # SQLAlchemy send one statement per row), so match by key, which is unique within a round.
        returned = {(a.source, a.kind, a.subject): (a, bool(inserted)) for a, inserted in result.all()}
        for i, key in zip(indexes, keys, strict=True):
            alert, created = returned[key]
            # Policies and mutes decide, in this transaction, whether anyone hears of a new one; a
            # muted or suppressed alert is stored and counted, but not pushed as new. Announced now,
            # before a later round changes the same entity.
            quiet = await policies.on_created(session, alert, now=now) if created else False
            announce(session, alert, created=created and not quiet)
            out[i] = (alert, created)
    return [pair for pair in out if pair is not None]


async def raise_alert(
    session: AsyncSession,
    *,
    source: str,
    kind: str,
    severity: str,
    title: str,
    subject: str = "",
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> tuple[Alert, bool]:
    """Open an alert, or bump the active one with the same (source, kind, subject).

    A repeat adds to `count`, moves `last_seen_at`, keeps the higher severity and takes the newest
    title and data. One INSERT ... ON CONFLICT against the partial unique index, so it is safe
    under concurrency. Returns the alert and whether it was created.
    """
    spec: AlertSpec = {"source": source, "kind": kind, "severity": severity, "title": title,
                       "subject": subject, "data": data, "at": at}
    return (await raise_alerts(session, [spec]))[0]


async def get_alert(session: AsyncSession, *, alert_id: uuid.UUID) -> Alert:
    """The alert, or 404: what reading, acknowledging and resolving one start from."""
    return await get_or_404(session, Alert, alert_id, error=AlertNotFound)


async def list_alerts(
    db: AsyncSession | Reads,
    *,
    page: PageParams,
    status: str | None = None,
    severity: str | None = None,
    source: str | None = None,
    kind: str | None = None,
    subject: str | None = None,
    since: datetime | None = None,
) -> dict:
    """A page of alerts filtered by status, severity, source, kind, subject or activity since; newest activity first.
    Items are dicts of AlertRead's columns (no entities: a page is read, never changed); the API reads them
    on the asyncpg pool (`db` is the app's Reads), a script may pass a session."""
    given = {"status": status, "severity": severity, "source": source, "kind": kind, "subject": subject,
             "since": since}
    values = {name: value for name, value in given.items() if value is not None}
    return await paginate(db, _page_statement(frozenset(values)), page, dicts=True, values=values)


@functools.cache
def _page_statement(filters: frozenset[str]) -> Select[Any]:
    """The page query for one combination of filters (64 at most), its values as parameters."""
    stmt = select(*_READ_COLUMNS)
    for name in ("status", "severity", "source", "kind", "subject"):
        if name in filters:
            stmt = stmt.where(Alert.__table__.c[name] == bindparam(name))
    if "since" in filters:
        stmt = stmt.where(Alert.last_seen_at >= bindparam("since"))
    return stmt.order_by(Alert.last_seen_at.desc(), Alert.id)


async def _locked(session: AsyncSession, alert_id: uuid.UUID) -> Alert:
    return await get_or_404(session, Alert, alert_id, error=AlertNotFound, with_for_update=True)


async def acknowledge(session: AsyncSession, *, alert: Alert, by: str | None = None) -> Alert:
    """Open -> acknowledged (`alert` row-locked by the caller). Acknowledging again, or a resolved alert,
    changes nothing."""
    if alert.status == "open":
        alert.status, alert.acknowledged_at, alert.acknowledged_by = "acknowledged", utcnow(), by
        record(session, alert, "acknowledged", by=by or "system")
        await session.flush()
        announce(session, alert, created=False)
    return alert


async def resolve(session: AsyncSession, *, alert: Alert, by: str | None = None) -> Alert:
    """Any active alert -> resolved (`alert` row-locked by the caller). Resolving again changes nothing."""
    if alert.status != "resolved":
        await _mark_resolved(session, alert, by=by, reason="manual")
    return alert


async def _mark_resolved(session: AsyncSession, alert: Alert, *, by: str | None, reason: str) -> None:
    alert.status, alert.resolved_at, alert.resolved_by = "resolved", utcnow(), by
    record(session, alert, "resolved", by=by or "system", detail={"reason": reason})
    await session.flush()
    announce(session, alert, created=False)


async def resolve_active(session: AsyncSession, *, source: str, kind: str, subject: str = "",
                         by: str = "auto") -> Alert | None:
    """Resolve the active alert of (source, kind, subject), if any (e.g. a tag back inside a fence)."""
    alert = await session.scalar(
        select(Alert).where(Alert.source == source, Alert.kind == kind, Alert.subject == subject, ACTIVE)
        .with_for_update()
    )
    if alert is not None:
        # "auto": the source itself saw the condition end.
        await _mark_resolved(session, alert, by=by, reason="auto")
    return alert


# --- history, people on alerts, snooze, mutes ------------------------------------------------


async def history(session: AsyncSession, *, alert: Alert) -> list[AlertHistory]:
    """The alert's history, oldest first."""
    rows = await session.scalars(
        select(AlertHistory)
        .where(AlertHistory.alert_id == alert.id)
        .order_by(AlertHistory.at, AlertHistory.seq)
    )
    return list(rows.all())


async def update_alert(session: AsyncSession, *, alert_id: uuid.UUID, changes: dict[str, Any],
                       by: str) -> Alert:
    """Change what people own on an alert (its `assignee`); recorded as `updated` and announced."""
    alert = await _locked(session, alert_id)
    diff = {name: {"from": getattr(alert, name), "to": value}
            for name, value in changes.items() if getattr(alert, name) != value}
    if diff:
        for name, change in diff.items():
            setattr(alert, name, change["to"])
        record(session, alert, "updated", by=by, detail=diff)
        await session.flush()
        announce(session, alert, created=False)
    return alert


async def comment(session: AsyncSession, *, alert_id: uuid.UUID, text: str, by: str) -> dict[str, Any]:
    """Add a comment, kept in the alert's history as `commented`; announced as an update."""
    alert = await _locked(session, alert_id)
    entry = record(session, alert, "commented", by=by, detail={"text": text})
    alert.updated_at = utcnow()
    await session.flush()
    announce(session, alert, created=False)
    return {"id": entry.id, "alert_id": alert.id, "at": entry.at, "by": entry.by, "text": text}


async def snooze(session: AsyncSession, *, alert_id: uuid.UUID, until: datetime, by: str) -> Alert:
    """No notifications (reminders, escalations) for this alert until `until`; it stays open and counted."""
    alert = await _locked(session, alert_id)
    if alert.status == "resolved":
        raise InvalidState("A resolved alert cannot be snoozed.")
    alert.snoozed_until = until
    record(session, alert, "snoozed", by=by, detail={"until": until.isoformat()})
    await policies.postpone(session, alert_id=alert.id, until=until)
    await session.flush()
    announce(session, alert, created=False)
    return alert


async def create_mute(session: AsyncSession, *, mute_in: MuteCreate, by: str) -> AlertMute:
    """Mute alerts matching `match` until `until`: raised ones are stored and counted, not notified."""
    match = mute_in.match.model_dump(exclude_none=True)
    if not match:
        raise ValidationFailed("A mute must match something (source, kind, severity, subject, zone_id, "
                               "camera_id or site_id).")
    if mute_in.until <= utcnow():
        errors = [{"loc": ["body", "until"], "msg": "in the past", "type": "value_error"}]
        raise ValidationFailed("'until' must be in the future.", errors=errors)
    mute = AlertMute(id=uuid.uuid4(), match=match, until=mute_in.until, created_by=by,
                     created_at=utcnow(), updated_at=utcnow())
    session.add(mute)
    await session.flush()
    return mute


async def list_mutes(session: AsyncSession, *, page: PageParams, active: bool | None = None) -> dict:
    """Mutes, latest ending first; `active=true` only those still in force."""
    stmt = select(AlertMute)
    if active is True:
        stmt = stmt.where(AlertMute.until > utcnow())
    elif active is False:
        stmt = stmt.where(AlertMute.until <= utcnow())
    return await paginate(session, stmt.order_by(AlertMute.until.desc(), AlertMute.id), page)


class MuteNotFound(NotFound):
    title = "Mute not found"


async def delete_mute(session: AsyncSession, *, mute: AlertMute) -> None:
    """Remove a mute now; alerts raised from then on notify again."""
    await session.delete(mute)
    await session.flush()


# --- raw messages of the alert topics (debugging aid for pipelines) --------------------------

RECENT_MESSAGES_KEY = "vigil:alerts:recent_messages"


async def remember_message(redis: Redis, *, message: dict[str, Any], keep: int) -> None:
    """Keep one raw alert-topic message in the newest-first list of the last `keep`."""
    await remember_messages(redis, messages=[message], keep=keep)


async def remember_messages(redis: Redis, *, messages: Sequence[dict[str, Any]], keep: int) -> None:
    """Keep raw alert-topic messages (oldest first) in the newest-first list of the last `keep`: one round
    trip for a consumer's whole batch."""
    if not messages:
        return
    async with redis.pipeline(transaction=True) as pipe:
        pipe.lpush(RECENT_MESSAGES_KEY, *(json.dumps(m, default=str) for m in messages))
        pipe.ltrim(RECENT_MESSAGES_KEY, 0, keep - 1)
        await pipe.execute()


async def recent_messages(redis: Redis, *, limit: int) -> list[dict[str, Any]]:
    """The newest raw messages seen on the alert topics, newest first."""
    return [json.loads(raw) for raw in await redis.lrange(RECENT_MESSAGES_KEY, 0, limit - 1)]


__all__ = ["AlertNotFound", "AlertSpec", "MuteNotFound", "acknowledge", "comment", "create_mute", "delete_mute",
           "get_alert", "history", "list_alerts", "list_mutes", "raise_alert", "raise_alerts", "recent_messages",
           "record", "remember_message", "remember_messages", "resolve", "resolve_active", "snooze", "update_alert"]


# --- retention (run by core.retention; listed in registry.retention_policies) ----------------


async def purge_resolved(ctx: AppContext, *, cutoff: Any, limit: int) -> int:
    """Delete one chunk of alerts resolved before `cutoff`; open and acknowledged ones always stay."""
    return len(await delete_chunk(ctx, Alert.id, Alert.status == "resolved", Alert.resolved_at < cutoff,
                                  limit=limit))


def retention_policies() -> list[RetentionPolicy]:
    """What the alerts domain lets retention purge: resolved alerts, whose history has run its course."""
    return [RetentionPolicy("resolved_alerts", "retention_resolved_alerts_days", purge_resolved)]
