"""Plate rules: idempotent ingest with checked images, search (exact and fuzzy), stats, image reads."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any, cast

from loguru import logger
from sqlalchemy import Select, Table, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.alerts import service as alerts
from vigil.cameras import service as cameras
from vigil.core.context import AppContext
from vigil.core.crud import apply_patch, ensure_unique, get_or_404, unknown_reference
from vigil.core.errors import NotFound, ValidationFailed
from vigil.core.messaging import emit
from vigil.core.pagination import PageParams, paginate
from vigil.core.retention import RetentionPolicy, delete_chunk
from vigil.core.storage import (
    BLOB_LOCKS_PARAM,
    BlobStore,
    blob_lock_ids,
    claim_blobs_expression,
    content_key,
    delete_unreferenced,
)
from vigil.plates.images import inspect_image
from vigil.plates.models import PlateEvent, WatchlistEntry
from vigil.plates.normalize import normalize_plate, within_distance
from vigil.plates.schemas import PlateEventCreate, PlateEventRead, WatchlistCreate, WatchlistUpdate

IMAGE_PARTS = ("frame", "crop")
# Fuzzy search compares this many distinct candidate plates in the event loop; more go to a thread.
_INLINE_CANDIDATES = 2000


class PlateEventNotFound(NotFound):
    title = "Plate event not found"


class WatchlistEntryNotFound(NotFound):
    title = "Watchlist entry not found"


def _unknown_camera(camera_id: uuid.UUID) -> ValidationFailed:
    return unknown_reference("camera_id", camera_id)


async def _by_uid(session: AsyncSession, event_uid: str) -> PlateEvent | None:
    return await session.scalar(select(PlateEvent).where(PlateEvent.event_uid == event_uid))


def _check_images(images: dict[str, bytes], *, max_bytes: int, max_pixels: int) -> dict[str, tuple[str, str]]:
    """(content key, media type) per image part, after checking each (nothing is stored if one is bad).

    The check reads only the image headers (format, size), which costs microseconds, so it runs inline;
    the pixels are never decoded at ingest.
    """
    checked = {}
    for part, data in images.items():
        info = inspect_image(data, part=part, max_bytes=max_bytes, max_pixels=max_pixels)
        checked[part] = (content_key(data, prefix=f"plates/{part}s", ext=info.ext), info.media_type)
    return checked


async def _store_images(storage: BlobStore, images: dict[str, bytes], keys: dict[str, tuple[str, str]]) -> None:
    """Write the blobs concurrently, off the event loop."""
    await asyncio.gather(*(storage.put(keys[part][0], data) for part, data in images.items()))


# Before the insert, one round trip: the camera's name (NULL: unknown camera), the first event with this
# event_uid (a repeat), and a shared claim on each blob key until the commit, so that a concurrent purge
# of an old event sharing a key keeps the blob.
_PREFLIGHT = select(
    cameras.name_of(bindparam("camera_id")).label("camera_name"),
    select(PlateEvent.id).where(PlateEvent.event_uid == bindparam("event_uid")).scalar_subquery().label("first_id"),
    claim_blobs_expression().label("claimed"),
)
_EVENTS = cast(Table, PlateEvent.__table__)
_WATCHLIST = cast(Table, WatchlistEntry.__table__)
_INSERTED_COLUMNS = ("id", "event_uid", "camera_id", "plate", "plate_normalized", "confidence", "captured_at",
                     "region", "vehicle", "tpms", "bbox", "frame_key", "frame_type", "crop_key", "crop_type")
# The insert and the watchlist lookup of its plate, in one statement. No row: a concurrent request with the
# same event_uid won the race.
_inserted = (
    insert(_EVENTS).values({name: bindparam(name) for name in _INSERTED_COLUMNS})
    .on_conflict_do_nothing(index_elements=["event_uid"]).returning(*_EVENTS.c).cte("inserted")
)
_INSERT = select(
    _inserted, _WATCHLIST.c.id.label("watch_id"), _WATCHLIST.c.label.label("watch_label"),
    _WATCHLIST.c.severity.label("watch_severity"),
).select_from(_inserted.outerjoin(_WATCHLIST, _WATCHLIST.c.plate_normalized == _inserted.c.plate_normalized))


async def ingest_event(
    session: AsyncSession,
    *,
    storage: BlobStore,
    event_in: PlateEventCreate,
    images: dict[str, bytes],
    max_image_bytes: int,
    max_image_pixels: int,
) -> tuple[PlateEvent | dict[str, Any], bool]:
    """Store one event; returns (event, created): the new row's columns, or the first event (an entity)
    for a known `event_uid`, untouched.

    Images are checked before the first query (a bad one never touches the database); blobs are
    written, concurrently, only for a new event, before its row. They are content-addressed, so a
    rolled-back request leaves at most an unreferenced file that the same bytes would reuse. Three round
    trips in all: the checks with the blob claims, the insert with the watchlist lookup, and the commit
    (which also writes the outbox row).
    """
    unknown = set(images) - set(IMAGE_PARTS)
    if unknown:
        raise ValidationFailed(f"Unknown image part(s): {', '.join(sorted(unknown))}.")
    stored = _check_images(images, max_bytes=max_image_bytes, max_pixels=max_image_pixels)
    checked = (await session.execute(_PREFLIGHT, {
        "camera_id": event_in.camera_id, "event_uid": event_in.event_uid,
        BLOB_LOCKS_PARAM: blob_lock_ids(key for key, _ in stored.values()),
    })).one()
    if checked.camera_name is None:
        raise _unknown_camera(event_in.camera_id)
    # A repeat, unless retention deleted the first event since: then this one is new.
    if checked.first_id is not None and (first := await session.get(PlateEvent, checked.first_id)) is not None:
        logger.debug("plate event {} repeated (event_uid={!r})", first.id, event_in.event_uid)
        return first, False
    await _store_images(storage, images, stored)
    values: dict[str, Any] = event_in.model_dump(exclude={"vehicle"})
    values["vehicle"] = event_in.vehicle.model_dump(exclude_none=True) if event_in.vehicle else None
    values["id"] = uuid.uuid4()
    values["plate_normalized"] = normalize_plate(event_in.plate)
    for part in IMAGE_PARTS:
        values[f"{part}_key"], values[f"{part}_type"] = stored.get(part, (None, None))
    if values.keys() != set(_INSERTED_COLUMNS):  # a field added to the schema must be stored, not dropped
        differ = sorted(values.keys() ^ set(_INSERTED_COLUMNS))
        raise RuntimeError(f"plate insert columns differ from the event: {differ}")
    row = (await session.execute(_INSERT, values)).mappings().one_or_none()
    if row is None:  # a concurrent request with the same event_uid won the race
        first_or_none = await _by_uid(session, event_in.event_uid or "")
        if first_or_none is None:
            raise RuntimeError("event_uid conflict without a stored event")
        return first_or_none, False
    event = {name: row[name] for name in PlateEventRead.model_fields}
    emit(session, "plate.event", PlateEventRead.model_validate(event).model_dump(mode="json"),
         key=str(event["camera_id"]))
    if row["watch_id"] is not None:
        await _watchlist_hit(session, event, camera_name=checked.camera_name, watch_id=row["watch_id"],
                             label=row["watch_label"], severity=row["watch_severity"])
    # DEBUG: one line per ingested event would double the access line at camera rates (a watchlist hit is INFO).
    logger.debug("plate event {} stored (camera_id={} plate={} images={})", event["id"], event["camera_id"],
                event["plate_normalized"], ",".join(stored) or "-")
    return event, True


async def get_event(session: AsyncSession, *, event_id: uuid.UUID) -> PlateEvent:
    """One plate event by id, or 404."""
    return await get_or_404(session, PlateEvent, event_id, error=PlateEventNotFound)


async def get_image(
    session: AsyncSession, *, storage: BlobStore, event_id: uuid.UUID, part: str
) -> tuple[bytes, str]:
    """The stored bytes and media type of an event's `frame` or `crop`."""
    event = await get_event(session, event_id=event_id)
    key, media_type = getattr(event, f"{part}_key"), getattr(event, f"{part}_type")
    if not key:
        raise NotFound(f"Plate event {event_id} has no {part} image.")
    try:
        return await storage.get(key), media_type
    except FileNotFoundError:
        logger.error("plate event {} {} blob {} is missing from storage", event_id, part, key)
        raise NotFound(f"The {part} image of plate event {event_id} is no longer stored.") from None


async def image_ref(session: AsyncSession, *, event_id: uuid.UUID, part: str) -> tuple[str, str]:
    """The blob key and media type of an event's `frame` or `crop` (the router streams or redirects)."""
    event = await get_event(session, event_id=event_id)
    key, media_type = getattr(event, f"{part}_key"), getattr(event, f"{part}_type")
    if not key:
        raise NotFound(f"Plate event {event_id} has no {part} image.")
    return key, media_type


async def referenced_keys(session: AsyncSession, keys: list[str]) -> set[str]:
    """Which of these blob keys some plate event still names (frames and crops are shared by content)."""
    frames = select(PlateEvent.frame_key).where(PlateEvent.frame_key.in_(keys))
    crops = select(PlateEvent.crop_key).where(PlateEvent.crop_key.in_(keys))
    return set(await session.scalars(frames.union(crops)))


def image_gone(event_id: uuid.UUID, part: str, key: str) -> NotFound:
    """The 404 for a row whose blob is missing from storage (logged: it should not happen)."""
    logger.error("plate event {} {} blob {} is missing from storage", event_id, part, key)
    return NotFound(f"The {part} image of plate event {event_id} is no longer stored.")


def _filtered(
    stmt: Select[Any],
    *,
    camera_id: uuid.UUID | None,
    since: datetime | None,
    until: datetime | None,
    min_confidence: float | None,
) -> Select[Any]:
    if camera_id is not None:
        stmt = stmt.where(PlateEvent.camera_id == camera_id)
    if since is not None:
        stmt = stmt.where(PlateEvent.captured_at >= since)
    if until is not None:
        stmt = stmt.where(PlateEvent.captured_at < until)
    if min_confidence is not None:
        stmt = stmt.where(PlateEvent.confidence >= min_confidence)
    return stmt


async def _fuzzy_matches(
    session: AsyncSession, stmt: Select[Any], plate: str, max_distance: int
) -> list[str]:
    """Distinct stored plates within `max_distance` edits of `plate`.

    The embedded PostgreSQL has no fuzzystrmatch/pg_trgm, so SQL narrows the candidates (same filters,
    length within the distance) and Python computes the bounded Levenshtein distance.
    """
    length = func.char_length(PlateEvent.plate_normalized)
    candidates = list(
        await session.scalars(
            stmt.with_only_columns(PlateEvent.plate_normalized)
            .distinct()
            .where(length.between(len(plate) - max_distance, len(plate) + max_distance))
        )
    )

    def keep() -> list[str]:
        return [c for c in candidates if within_distance(plate, c, max_distance)]

    return keep() if len(candidates) <= _INLINE_CANDIDATES else await asyncio.to_thread(keep)


async def list_events(
    session: AsyncSession,
    *,
    page: PageParams,
    plate: str | None = None,
    max_distance: int = 0,
    camera_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    min_confidence: float | None = None,
) -> dict:
    """Newest capture first. `plate` matches the normalised form, within `max_distance` edits if given."""
    stmt = _filtered(
        select(PlateEvent), camera_id=camera_id, since=since, until=until, min_confidence=min_confidence
    )
    if plate is not None:
        wanted = normalize_plate(plate)
        if not wanted:
            raise ValidationFailed("'plate' must contain at least one letter or digit.")
        if max_distance > 0:
            matches = await _fuzzy_matches(session, stmt, wanted, max_distance)
            stmt = stmt.where(PlateEvent.plate_normalized.in_(matches))
        else:
            stmt = stmt.where(PlateEvent.plate_normalized == wanted)
    elif max_distance > 0:
        raise ValidationFailed("'max_distance' needs a 'plate' to compare with.")
    return await paginate(session, stmt.order_by(PlateEvent.captured_at.desc(), PlateEvent.id), page)


async def stats(
    session: AsyncSession, *, since: datetime | None = None, until: datetime | None = None, top: int = 10
) -> dict[str, Any]:
    """Totals, per camera, per hour (UTC), most seen plates and mean confidence; all aggregated in SQL."""
    if since is not None and until is not None and until <= since:
        raise ValidationFailed("'until' must be after 'since'.")

    def scoped(stmt: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
        return _filtered(stmt, camera_id=None, since=since, until=until, min_confidence=None)

    total, avg = (await session.execute(scoped(select(func.count(), func.avg(PlateEvent.confidence))))).one()
    by_camera = (
        await session.execute(
            scoped(select(PlateEvent.camera_id, func.count().label("n")))
            .group_by(PlateEvent.camera_id)
            .order_by(func.count().desc(), PlateEvent.camera_id)
        )
    ).all()
    names = await cameras.camera_names(session, camera_ids=[row.camera_id for row in by_camera])
    hour = func.date_trunc("hour", PlateEvent.captured_at)
    by_hour = (
        await session.execute(
            scoped(select(hour.label("hour"), func.count().label("n"))).group_by(hour).order_by(hour)
        )
    ).all()
    top_plates = (
        await session.execute(
            scoped(
                select(
                    PlateEvent.plate_normalized,
                    func.count().label("n"),
                    func.max(PlateEvent.captured_at).label("last"),
                )
            )
            .group_by(PlateEvent.plate_normalized)
            .order_by(func.count().desc(), PlateEvent.plate_normalized)
            .limit(top)
        )
    ).all()
    return {
        "since": since,
        "until": until,
        "total": total,
        "avg_confidence": round(float(avg), 4) if avg is not None else None,
        "by_camera": [
            {"camera_id": r.camera_id, "camera_name": names.get(r.camera_id), "count": r.n} for r in by_camera
        ],
        "by_hour": [{"hour": r.hour, "count": r.n} for r in by_hour],
        "top_plates": [
            {"plate": r.plate_normalized, "count": r.n, "last_seen_at": r.last} for r in top_plates
        ],
    }


# --- watchlist -------------------------------------------------------------------------------


async def _watchlist_hit(session: AsyncSession, event: dict[str, Any], *, camera_name: str, watch_id: uuid.UUID,
                         label: str, severity: str) -> None:
    """Raise (or bump) the `watchlist_hit` alert of a listed plate: one alert per plate."""
    plate = event["plate_normalized"]
    alert, created = await alerts.raise_alert(
        session,
        source="plate",
        kind="watchlist_hit",
        severity=severity,
        subject=plate,
        title=f"Watchlisted plate {plate}{f' ({label})' if label else ''} seen by {camera_name}",
        data={
            "plate": plate,
            "plate_raw": event["plate"],
            "label": label,
            "watchlist_id": str(watch_id),
            "event_id": str(event["id"]),
            "camera_id": str(event["camera_id"]),
            "camera_name": camera_name,
            "confidence": event["confidence"],
            "captured_at": event["captured_at"].isoformat(),
        },
        at=event["captured_at"],
    )
    logger.info("watchlist hit: plate {} event {} alert {} ({})", plate, event["id"], alert.id,
                "new" if created else "repeat")


async def add_to_watchlist(session: AsyncSession, *, entry_in: WatchlistCreate) -> WatchlistEntry:
    """Watch a plate; its normalised form is unique on the list."""
    normalized = normalize_plate(entry_in.plate)
    await ensure_unique(session, WatchlistEntry, plate_normalized=normalized,
                        detail=f"Plate {normalized} is already on the watchlist.")
    entry = WatchlistEntry(
        plate=entry_in.plate, plate_normalized=normalized, label=entry_in.label, severity=entry_in.severity
    )
    session.add(entry)
    await session.flush()
    logger.info("watchlist entry {} added for plate {}", entry.id, normalized)
    return entry


async def get_watchlist_entry(session: AsyncSession, *, entry_id: uuid.UUID) -> WatchlistEntry:
    """One watchlist entry by id, or 404."""
    return await get_or_404(session, WatchlistEntry, entry_id, error=WatchlistEntryNotFound)


async def list_watchlist(session: AsyncSession, *, page: PageParams, plate: str | None = None) -> dict:
    """One page of the watchlist, optionally for one plate (compared normalised)."""
    stmt = select(WatchlistEntry)
    if plate:
        stmt = stmt.where(WatchlistEntry.plate_normalized == normalize_plate(plate))
    return await paginate(session, stmt.order_by(WatchlistEntry.plate_normalized), page)


async def update_watchlist_entry(
    session: AsyncSession, *, entry_id: uuid.UUID, entry_in: WatchlistUpdate
) -> WatchlistEntry:
    """Change label or severity; the plate is the entry's identity (remove and add to change it)."""
    entry = await get_watchlist_entry(session, entry_id=entry_id)
    apply_patch(entry, entry_in)  # label and severity are NOT NULL (an empty label is "")
    await session.flush()
    return entry


async def remove_from_watchlist(session: AsyncSession, *, entry_id: uuid.UUID) -> None:
    """Stop watching a plate; past alerts stay."""
    entry = await get_watchlist_entry(session, entry_id=entry_id)
    await session.delete(entry)
    await session.flush()
    logger.info("watchlist entry {} removed (plate {})", entry_id, entry.plate_normalized)


# --- retention (run by core.retention; listed in registry.retention_policies) ----------------


async def purge_events(ctx: AppContext, *, cutoff: datetime, limit: int) -> int:
    """Delete one chunk of plate events stored before `cutoff`, then the frames and crops that no
    remaining event shares (content-addressed blobs may be named by several events)."""
    rows = await delete_chunk(ctx, PlateEvent.id, PlateEvent.created_at < cutoff, limit=limit,
                              returning=[PlateEvent.frame_key, PlateEvent.crop_key])
    keys = {k for row in rows for k in row if k}
    if keys:
        await delete_unreferenced(ctx.sessionmaker, ctx.storage, keys, referenced=referenced_keys)
    return len(rows)


def retention_policies() -> list[RetentionPolicy]:
    """What the plates domain lets retention purge (the watchlist is configuration: kept)."""
    return [RetentionPolicy("plate_events", "retention_plate_events_days", purge_events)]
