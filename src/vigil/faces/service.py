"""Faces rules: events, image uploads (decode, detect, encode, store), clusters, search.

Blocking work (decoding and the model) happens in the worker processes of `FacesRuntime`; this
module only awaits it. Services flush, never commit: the request's unit of work commits.
"""

from __future__ import annotations

from typing import Any

from loguru import logger
from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.core.errors import Conflict, NotFound, ValidationFailed
from vigil.core.pagination import PageParams, paginate
from vigil.core.storage import BlobStore
from vigil.faces.models import FaceEvent
from vigil.faces.schemas import EventCreate


class EventNotFound(NotFound):
    title = "Face event not found"


class EventNotRunning(Conflict):
    title = "Face event not running"


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


async def get_event(session: AsyncSession, *, code: str, lock: bool = False) -> FaceEvent:
    stmt = select(FaceEvent).where(FaceEvent.code == code)
    if lock:
        stmt = stmt.with_for_update()
    event = await session.scalar(stmt)
    if event is None:
        raise EventNotFound(f"Face event {code!r} does not exist.")
    return event


async def create_event(session: AsyncSession, *, event_in: EventCreate) -> FaceEvent:
    if await session.scalar(select(FaceEvent.id).where(FaceEvent.code == event_in.code)) is not None:
        raise Conflict(f"A face event with code {event_in.code!r} already exists.")
    event = FaceEvent(**event_in.model_dump())
    session.add(event)
    await session.flush()
    logger.info("face event {} created (code {})", event.id, event.code)
    return event


async def list_events(session: AsyncSession, *, page: PageParams, running: bool | None = None,
                      q: str | None = None) -> dict:
    """Newest first; `q` matches code or name, case-insensitively."""
    stmt = select(FaceEvent)
    if running is not None:
        stmt = stmt.where(FaceEvent.running.is_(running))
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(or_(FaceEvent.code.ilike(pattern), FaceEvent.name.ilike(pattern)))
    return await paginate(session, stmt.order_by(FaceEvent.created_at.desc(), FaceEvent.id), page)


async def update_event(session: AsyncSession, *, code: str, changes: dict[str, Any]) -> FaceEvent:
    """Apply the given fields (PATCH passes only those sent; PUT passes all)."""
    event = await get_event(session, code=code, lock=True)
    starts = changes.get("starts_at", event.starts_at)
    ends = changes.get("ends_at", event.ends_at)
    if starts is not None and ends is not None and ends < starts:
        raise ValidationFailed("ends_at must not be before starts_at")
    for name, value in changes.items():
        if name in ("name", "running") and value is None:
            raise ValidationFailed(f"{name} cannot be null")
        setattr(event, name, value)
    await session.flush()
    logger.info("face event {} updated: {}", event.code, ", ".join(sorted(changes)) or "nothing")
    return event


async def delete_event(session: AsyncSession, *, storage: BlobStore, code: str) -> None:
    """Remove the event with its images, faces, clusters and jobs (cascade) and the image files."""
    event = await get_event(session, code=code, lock=True)
    await session.execute(delete(FaceEvent).where(FaceEvent.id == event.id))
    logger.info("face event {} deleted", code)


__all__ = ["EventNotFound", "EventNotRunning", "create_event", "delete_event", "get_event", "list_events",
           "update_event"]
