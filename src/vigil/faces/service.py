"""Faces rules, the API side: events, image uploads (decode, detect, encode, store), clusters, search.

How faces join clusters, and the recompute job's database side, are `clustering`; this module is
what the router and other domains call. Blocking work (decoding and the model) happens in the worker
processes of `FacesRuntime`; this module only awaits it. Services flush, never commit: the
request's unit of work commits.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from loguru import logger
from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from vigil.core.context import AppContext
from vigil.core.crud import apply_patch, ensure_unique, get_or_404, null_not_allowed
from vigil.core.db import after_commit, session_scope, utcnow
from vigil.core.errors import Conflict, NotFound, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from vigil.core.messaging import emit
from vigil.core.pagination import PageParams, paginate
from vigil.core.retention import RetentionPolicy, delete_chunk
from vigil.core.storage import BlobStore, claim_blob, delete_after_commit, delete_unreferenced, key_for_digest
from vigil.faces import encoder
from vigil.faces.clustering import lock_event_clusters, nearest_cluster, nearest_stmt
from vigil.faces.models import EMBEDDING_DIM, Face, FaceCluster, FaceClusterJob, FaceEvent, FaceImage
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


class JobNotFound(NotFound):
    title = "Cluster job not found"


class RecomputeRunning(Conflict):
    title = "Recompute already running"


async def release_connection(session: AsyncSession) -> None:
    """End the session's read-only transaction so its connection goes back to the pool during a long
    wait (the encoder); the next statement takes a connection again. Nothing may be pending."""
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("release_connection with unflushed changes would lose them")
    if session.in_transaction():
        await session.rollback()


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
    """The event with this code, or 404 (found by natural key, optionally row-locked: not `get_or_404`)."""
    stmt = select(FaceEvent).where(FaceEvent.code == code)
    if lock:
        stmt = stmt.with_for_update()
    event = await session.scalar(stmt)
    if event is None:
        raise EventNotFound(f"Face event {code!r} does not exist.")
    return event


async def create_event(session: AsyncSession, *, event_in: EventCreate) -> FaceEvent:
    """Create a face event; its code is unique."""
    await ensure_unique(session, FaceEvent, code=event_in.code,
                        detail=f"A face event with code {event_in.code!r} already exists.")
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
        stmt = stmt.where(or_(FaceEvent.code.icontains(q, autoescape=True),
                              FaceEvent.name.icontains(q, autoescape=True)))
    return await paginate(session, stmt.order_by(FaceEvent.created_at.desc(), FaceEvent.id), page)


async def update_event(session: AsyncSession, *, code: str, changes: dict[str, Any]) -> FaceEvent:
    """Apply the given fields (PATCH passes only those sent; PUT passes all)."""
    event = await get_event(session, code=code, lock=True)
    starts = changes.get("starts_at", event.starts_at)
    ends = changes.get("ends_at", event.ends_at)
    if starts is not None and ends is not None and ends < starts:
        raise ValidationFailed("ends_at must not be before starts_at")
    nulls = [k for k in ("name", "running") if k in changes and changes[k] is None]
    if nulls:  # PUT and PATCH both land here, so the dict is checked rather than a body
        raise null_not_allowed(nulls)
    apply_patch(event, changes)
    await session.flush()
    logger.info("face event {} updated: {}", event.code, ", ".join(sorted(changes)) or "nothing")
    return event


async def delete_event(session: AsyncSession, *, storage: BlobStore, code: str) -> None:
    """Remove the event with its images, faces, clusters and jobs (cascade) and the image files."""
    event = await get_event(session, code=code, lock=True)
    keys = list(await session.scalars(select(FaceImage.blob_key).where(FaceImage.event_id == event.id)))
    await session.execute(delete(FaceEvent).where(FaceEvent.id == event.id))
    # Files go once the rows are committed, and only those no row names any more.
    delete_after_commit(session, storage, keys, referenced=referenced_keys)
    logger.info("face event {} deleted with {} images", code, len(keys))


# --------------------------------------------------------------------------------------------
# Images and faces
# --------------------------------------------------------------------------------------------


def _with_faces(stmt: Any) -> Any:
    return stmt.options(selectinload(FaceImage.event), selectinload(FaceImage.faces))


async def get_image(session: AsyncSession, *, image_id: uuid.UUID) -> FaceImage:
    """One image with its event and faces, or 404."""
    # Not `crud.get_or_404`: an image this unit of work just stored is in the identity map, where
    # `session.get` returns it without loading its event and faces; a SELECT loads them.
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
    digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())  # up to ~12 ms at 20 MB
    event = await get_event(session, code=event_code)
    if not event.running:
        raise EventNotRunning(f"Face event {event_code!r} is not running; it accepts no uploads.")
    existing = await _image_by_hash(session, event.id, digest)
    if existing is not None:
        return existing, False
    # The checks above were cheap reads; the encoder may take seconds (or queue): wait without a
    # connection, then look the event up again (it may have been stopped or deleted meanwhile).
    await release_connection(session)
    analysis = await analyse_upload(runtime, data)
    event = await get_event(session, code=event_code)
    if not event.running:
        raise EventNotRunning(f"Face event {event_code!r} is not running; it accepts no uploads.")
    key = key_for_digest(digest, prefix=f"faces/{event.id}", ext=analysis.extension)
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
    if analysis.faces:
        await lock_event_clusters(session, event.id)
    threshold = runtime.settings.faces_match_threshold
    for seq, found in enumerate(analysis.faces):
        x, y, w, h = found.bbox
        vector = found.vector.tolist()
        cluster_id = await nearest_cluster(session, event_id=event.id, model=analysis.model, vector=vector,
                                           threshold=threshold)
        session.add(Face(
            image_id=image.id, event_id=event.id, cluster_id=cluster_id, seq=seq, x=x, y=y, w=w, h=h,
            det_score=found.score, model=analysis.model, alignment=analysis.alignment, embedding=vector,
        ))
        await session.flush()  # the next face of this photo sees this one
    # After the row, and claimed until the commit: no delete of an image naming this key can remove
    # the file we write (the delete deletes files only after its commit, and only unreferenced ones).
    await claim_blob(session, key)
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


async def referenced_keys(session: AsyncSession, keys: list[str]) -> set[str]:
    """Which of these blob keys some face image still names."""
    return set(await session.scalars(select(FaceImage.blob_key).where(FaceImage.blob_key.in_(keys))))


async def image_row(session: AsyncSession, *, image_id: uuid.UUID) -> FaceImage:
    """The image row alone (blob key, media type, hash) for serving its file."""
    return await get_or_404(session, FaceImage, image_id, error=ImageNotFound, what="Image")


async def image_file(session: AsyncSession, *, storage: BlobStore, image_id: uuid.UUID) -> tuple[bytes, FaceImage]:
    """The bytes of an image and its row; 404 when either the row or the file is gone."""
    image = await image_row(session, image_id=image_id)
    try:
        return await storage.get(image.blob_key), image
    except FileNotFoundError as exc:
        raise ImageNotFound(f"The file of image {image_id} is missing.") from exc


async def delete_image(session: AsyncSession, *, storage: BlobStore, image_id: uuid.UUID) -> None:
    """Remove the image, its faces (cascade) and its file."""
    image = await get_or_404(session, FaceImage, image_id, error=ImageNotFound, what="Image", with_for_update=True)
    clusters = set(await session.scalars(
        select(Face.cluster_id).where(Face.image_id == image_id, Face.cluster_id.is_not(None))
    ))
    await session.execute(delete(FaceImage).where(FaceImage.id == image_id))
    if clusters:
        await session.execute(delete(FaceCluster).where(
            FaceCluster.id.in_(clusters), ~select(Face.id).where(Face.cluster_id == FaceCluster.id).exists()
        ))
    delete_after_commit(session, storage, [image.blob_key], referenced=referenced_keys)
    logger.info("face image {} deleted", image_id)


# --------------------------------------------------------------------------------------------
# Clusters
# --------------------------------------------------------------------------------------------


async def list_clusters(session: AsyncSession, *, event_code: str, sample: int = 5, min_size: int = 1,
                        limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """The event's people, biggest first, each with its size and a sample of faces (oldest first)."""
    event = await get_event(session, code=event_code)
    size = func.count(Face.id).label("size")
    biggest = (await session.execute(
        select(Face.cluster_id, size).where(Face.event_id == event.id, Face.cluster_id.is_not(None))
        .group_by(Face.cluster_id).having(func.count(Face.id) >= min_size)
        .order_by(size.desc(), Face.cluster_id).limit(limit).offset(offset)
    )).all()
    if not biggest:
        return []
    rank = func.row_number().over(partition_by=Face.cluster_id, order_by=(Face.created_at, Face.id)).label("rank")
    ranked = select(Face.cluster_id, Face.id, Face.image_id, rank).where(
        Face.cluster_id.in_([row.cluster_id for row in biggest])
    ).subquery()
    samples: dict[uuid.UUID, list[Any]] = {}
    for row in await session.execute(select(ranked).where(ranked.c.rank <= sample).order_by(ranked.c.rank)):
        samples.setdefault(row.cluster_id, []).append(row)
    return [{"cluster_id": row.cluster_id, "size": row.size,
             "face_ids": [f.id for f in samples.get(row.cluster_id, [])],
             "image_ids": [f.image_id for f in samples.get(row.cluster_id, [])]} for row in biggest]


def _job_query() -> Select[Any]:
    return select(FaceClusterJob).options(selectinload(FaceClusterJob.event))


async def request_recompute(session: AsyncSession, *, event_code: str,
                            on_queued: Callable[[], Awaitable[object]] | None = None) -> FaceClusterJob:
    """Queue a re-clustering of the event; one at a time per event (409 while one is active)."""
    event = await get_event(session, code=event_code)
    active = await session.scalar(select(FaceClusterJob.id).where(
        FaceClusterJob.event_id == event.id, FaceClusterJob.status.in_(("queued", "running"))
    ))
    if active is not None:
        raise RecomputeRunning(f"A recompute of {event_code!r} is already queued or running.", job_id=str(active))
    job = FaceClusterJob(event_id=event.id)
    try:
        async with session.begin_nested():  # the partial unique index settles a race between two requests
            session.add(job)
            await session.flush()
    except IntegrityError as exc:
        raise RecomputeRunning(f"A recompute of {event_code!r} is already queued or running.") from exc
    if on_queued is not None:
        after_commit(session, on_queued)  # wakes this instance's job worker once the request commits
    logger.info("face cluster job {} queued for event {}", job.id, event_code)
    return await get_job(session, job_id=job.id)


async def get_job(session: AsyncSession, *, job_id: uuid.UUID) -> FaceClusterJob:
    """One cluster job with its counts, or 404 (not `crud.get_or_404`: the counts come in the same query)."""
    job = await session.scalar(
        _job_query().where(FaceClusterJob.id == job_id).execution_options(populate_existing=True))
    if job is None:
        raise JobNotFound(f"Cluster job {job_id} does not exist.")
    return job


# --------------------------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------------------------


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
        await release_connection(session)  # no connection held while the encoder works
        analysis = await analyse_upload(runtime, data, largest_only=not all_faces)
        if not analysis.faces:
            raise NoFaceFound("no face found in the query image")
        model, found = analysis.model, analysis.detected
        queries: list[tuple[list[int] | None, list[float]]] = [
            (list(face.bbox), face.vector.tolist()) for face in analysis.faces
        ]
    else:
        if embedding is None:
            raise AssertionError()
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


# --------------------------------------------------------------------------------------------
# Retention (run by core.retention; listed in registry.retention_policies)
# --------------------------------------------------------------------------------------------


def finished_before(cutoff: Any) -> Any:
    """Events that are over (ended, or no longer running) since before `cutoff`."""
    over = or_(FaceEvent.running.is_(False), FaceEvent.ends_at <= utcnow())
    return select(FaceEvent.id).where(over, func.coalesce(FaceEvent.ends_at, FaceEvent.updated_at) < cutoff)


async def purge_finished(ctx: AppContext, *, cutoff: Any, limit: int) -> int:
    """Delete one chunk of images (with their faces and files) of events finished before `cutoff`,
    and the clusters left empty. The event itself (code, name, dates) stays as a record."""
    events = finished_before(cutoff)
    rows = await delete_chunk(ctx, FaceImage.id, FaceImage.event_id.in_(events), limit=limit,
                              returning=[FaceImage.blob_key])
    if rows:
        async with session_scope(ctx.sessionmaker) as session:
            await session.execute(delete(FaceCluster).where(
                FaceCluster.event_id.in_(events), ~select(Face.id).where(Face.cluster_id == FaceCluster.id).exists()
            ))
        await delete_unreferenced(ctx.sessionmaker, ctx.storage, [r.blob_key for r in rows],
                                  referenced=referenced_keys)
    return len(rows)


def retention_policies() -> list[RetentionPolicy]:
    """What the faces domain lets retention purge: the photos (and faces) of events that are over."""
    return [RetentionPolicy("faces", "retention_faces_days", purge_finished)]


__all__ = [
    "EventNotFound", "EventNotRunning", "ImageNotFound", "JobNotFound", "NoFaceFound", "RecomputeRunning",
    "analyse_upload", "create_event", "delete_event", "delete_image", "finished_before", "get_event", "get_image",
    "get_job", "image_file", "image_row", "list_clusters", "list_events", "list_images", "purge_finished",
    "referenced_keys", "release_connection", "request_recompute", "retention_policies", "search", "update_event",
    "upload_image",
]
