"""Faces rules: events, image uploads (decode, detect, encode, store), clusters, search.

Blocking work (decoding and the model) happens in the worker processes of `FacesRuntime`; this
module only awaits it. Services flush, never commit: the request's unit of work commits.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

from loguru import logger
from pgvector.sqlalchemy import Vector
from sqlalchemy import Float, Select, delete, func, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from vigil.core.bus import emit
from vigil.core.errors import Conflict, NotFound, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from vigil.core.pagination import PageParams, paginate
from vigil.core.storage import BlobStore, content_key
from vigil.faces import encoder
from vigil.faces.models import EMBEDDING_DIM, Face, FaceEvent, FaceImage
from vigil.faces.runtime import FacesRuntime
from vigil.faces.schemas import EventCreate


class EventNotFound(NotFound):
    title = "Face event not found"


class EventNotRunning(Conflict):
    title = "Face event not running"


class ImageNotFound(NotFound):
    title = "Image not found"


class NoFaceFound(ValidationFailed):
    title = "No face found"


async def analyse_upload(runtime: FacesRuntime, data: bytes, *, largest_only: bool = False) -> encoder.Analysis:
    """Decode and encode in a worker process; map refusals to 413 / 415."""
    limit = runtime.settings.faces_max_upload_bytes
    if len(data) > limit:
        raise PayloadTooLarge(f"The file has {len(data)} bytes; at most {limit} are accepted.")
    try:
        return await runtime.analyse(data, largest_only=largest_only)
    except encoder.ImageTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from exc
    except encoder.NotAnImage as exc:
        raise UnsupportedMediaType(str(exc)) from exc


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
    keys = list(await session.scalars(select(FaceImage.blob_key).where(FaceImage.event_id == event.id)))
    await session.execute(delete(FaceEvent).where(FaceEvent.id == event.id))
    # Rows first, files second: a file is never gone while its row is still visible. Blob keys carry
    # the event id, so no other event's image shares them.
    for key in keys:
        await storage.delete(key)
    logger.info("face event {} deleted with {} images", code, len(keys))


# --------------------------------------------------------------------------------------------
# Images and faces
# --------------------------------------------------------------------------------------------


def _with_faces(stmt: Any) -> Any:
    return stmt.options(selectinload(FaceImage.event), selectinload(FaceImage.faces))


async def get_image(session: AsyncSession, *, image_id: uuid.UUID) -> FaceImage:
    image = await session.scalar(_with_faces(select(FaceImage).where(FaceImage.id == image_id)))
    if image is None:
        raise ImageNotFound(f"Image {image_id} does not exist.")
    return image


async def upload_image(
    session: AsyncSession,
    *,
    runtime: FacesRuntime,
    storage: BlobStore,
    event_code: str,
    data: bytes,
    filename: str | None = None,
) -> tuple[FaceImage, bool]:
    """Store a photo of a running event with its faces. Returns (image, created): the same bytes
    uploaded to the same event again return the stored image, which is analysed and stored once."""
    event = await get_event(session, code=event_code)
    if not event.running:
        raise EventNotRunning(f"Face event {event_code!r} is not running; it accepts no uploads.")
    digest = hashlib.sha256(data).hexdigest()
    existing = await _image_by_hash(session, event.id, digest)
    if existing is not None:
        return existing, False
    analysis = await analyse_upload(runtime, data)
    key = content_key(data, prefix=f"faces/{event.id}", ext=analysis.extension)
    image = FaceImage(
        event_id=event.id, sha256=digest, blob_key=key, content_type=analysis.content_type,
        size_bytes=len(data), width=analysis.width, height=analysis.height, taken_at=analysis.taken_at,
        filename=(filename or None) and filename[:255],
    )
    try:
        async with session.begin_nested():  # a concurrent twin upload loses here and returns the winner
            session.add(image)
            await session.flush()
    except IntegrityError:
        existing = await _image_by_hash(session, event.id, digest)
        if existing is None:
            raise
        return existing, False
    for seq, found in enumerate(analysis.faces):
        x, y, w, h = found.bbox
        session.add(Face(
            image_id=image.id, event_id=event.id, seq=seq, x=x, y=y, w=w, h=h, det_score=found.score,
            model=analysis.model, alignment=analysis.alignment, embedding=found.vector.tolist(),
        ))
    await session.flush()
    # After the row: a delete of the same image waits on it, so it cannot remove the file we write.
    await storage.put(key, data)
    emit(session, "face.image_added", {"image_id": str(image.id), "event_code": event.code,
                                       "faces": len(analysis.faces)}, key=str(image.id))
    logger.info("face image {} stored in event {}: {}x{}, {} faces", image.id, event.code, analysis.width,
                analysis.height, len(analysis.faces))
    return await get_image(session, image_id=image.id), True


async def _image_by_hash(session: AsyncSession, event_id: uuid.UUID, digest: str) -> FaceImage | None:
    return await session.scalar(
        _with_faces(select(FaceImage).where(FaceImage.event_id == event_id, FaceImage.sha256 == digest))
    )


async def list_images(session: AsyncSession, *, page: PageParams, event_code: str | None = None,
                      cluster_id: uuid.UUID | None = None) -> dict:
    """Newest first, with their faces; `cluster_id` keeps images with at least one face in it."""
    stmt = _with_faces(select(FaceImage))
    if event_code is not None:
        event = await get_event(session, code=event_code)
        stmt = stmt.where(FaceImage.event_id == event.id)
    if cluster_id is not None:
        stmt = stmt.where(FaceImage.id.in_(select(Face.image_id).where(Face.cluster_id == cluster_id)))
    return await paginate(session, stmt.order_by(FaceImage.created_at.desc(), FaceImage.id), page)


async def image_file(session: AsyncSession, *, storage: BlobStore, image_id: uuid.UUID) -> tuple[bytes, FaceImage]:
    image = await session.get(FaceImage, image_id)
    if image is None:
        raise ImageNotFound(f"Image {image_id} does not exist.")
    try:
        return await storage.get(image.blob_key), image
    except FileNotFoundError as exc:
        raise ImageNotFound(f"The file of image {image_id} is missing.") from exc


async def delete_image(session: AsyncSession, *, storage: BlobStore, image_id: uuid.UUID) -> None:
    """Remove the image, its faces (cascade) and its file."""
    image = await session.scalar(select(FaceImage).where(FaceImage.id == image_id).with_for_update())
    if image is None:
        raise ImageNotFound(f"Image {image_id} does not exist.")
    await session.execute(delete(FaceImage).where(FaceImage.id == image_id))
    await storage.delete(image.blob_key)
    logger.info("face image {} deleted", image_id)


# --------------------------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------------------------


def nearest_stmt(query: Sequence[float], *, model: str, event_id: uuid.UUID | None, top_k: int) -> Select[Any]:
    """The `top_k` faces nearest to `query` by L2 distance, of one model, nearest first.

    Within one event: an exact scan of that event's faces (the function form `l2_distance()` never
    uses the HNSW index, so the planner takes the event index and sorts; exact and fast for the
    thousands of faces an event has). Across events: `embedding <-> :q` walks the HNSW index; pgvector
    applies WHERE filters after the index scan, which is why it is not used with a selective filter.
    The model filter loses nothing while every stored vector comes from the one current model.
    """
    q = literal(list(query), Vector(EMBEDDING_DIM))
    dist = (func.l2_distance(Face.embedding, q, type_=Float) if event_id is not None
            else Face.embedding.l2_distance(q))
    stmt = select(Face.id, Face.image_id, Face.event_id, Face.cluster_id, Face.x, Face.y, Face.w, Face.h,
                  dist.label("distance")).where(Face.model == model)
    if event_id is not None:
        stmt = stmt.where(Face.event_id == event_id)
    return stmt.order_by(dist).limit(top_k)


async def search(
    session: AsyncSession,
    *,
    runtime: FacesRuntime,
    data: bytes | None = None,
    embedding: Sequence[float] | None = None,
    event_code: str | None = None,
    top_k: int = 10,
    max_distance: float | None = None,
    all_faces: bool = False,
) -> dict[str, Any]:
    """Faces nearest to the largest face of a query image (every face with `all_faces`), or to an
    embedding; in one event or across all. Matches are nearest first; `is_match` applies the threshold."""
    if (data is None) == (embedding is None):
        raise ValidationFailed("Send either a query image (`file`) or an `embedding`, not both.")
    event_id = (await get_event(session, code=event_code)).id if event_code is not None else None
    if data is not None:
        analysis = await analyse_upload(runtime, data, largest_only=not all_faces)
        if not analysis.faces:
            raise NoFaceFound("no face found in the query image")
        model, found = analysis.model, analysis.detected
        queries: list[tuple[list[int] | None, list[float]]] = [
            (list(face.bbox), face.vector.tolist()) for face in analysis.faces
        ]
    else:
        assert embedding is not None
        if len(embedding) != EMBEDDING_DIM:
            raise ValidationFailed(f"The embedding has {len(embedding)} values; {encoder.DEFAULT_MODEL} "
                                   f"vectors have {EMBEDDING_DIM}.")
        model, found, queries = encoder.DEFAULT_MODEL, 1, [(None, list(embedding))]
    if event_id is None:
        ef = max(runtime.settings.faces_hnsw_ef_search, top_k)
        await session.execute(select(func.set_config("hnsw.ef_search", str(ef), True)))
    threshold = runtime.settings.faces_match_threshold
    matches: list[dict[str, Any]] = []
    for index, (_, vector) in enumerate(queries):
        rows = await session.execute(nearest_stmt(vector, model=model, event_id=event_id, top_k=top_k))
        for row in rows:
            if max_distance is not None and row.distance > max_distance:
                break  # rows come nearest first
            matches.append({
                "face_id": row.id, "image_id": row.image_id, "event_id": row.event_id, "cluster_id": row.cluster_id,
                "bbox": [row.x, row.y, row.w, row.h], "distance": float(row.distance),
                "is_match": encoder.is_match(float(row.distance), threshold), "query_index": index,
            })
    codes = dict((await session.execute(
        select(FaceEvent.id, FaceEvent.code).where(FaceEvent.id.in_({m["event_id"] for m in matches}))
    )).all()) if matches else {}
    for m in matches:
        m["event_code"] = codes[m.pop("event_id")]
    matches.sort(key=lambda m: (m["distance"], m["query_index"]))
    logger.info("face search in {}: {} query faces, {} matches", event_code or "all events", len(queries),
                len(matches))
    return {"query_faces": found, "queries": [{"bbox": bbox} for bbox, _ in queries], "metric": encoder.METRIC,
            "threshold": threshold, "model": model, "exact": event_id is not None, "matches": matches}


__all__ = ["EventNotFound", "EventNotRunning", "ImageNotFound", "NoFaceFound", "create_event", "delete_event", "delete_image",
           "get_event", "get_image", "image_file", "list_events", "list_images", "nearest_stmt", "search", "update_event", "upload_image"]
