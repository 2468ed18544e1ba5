"""Face clustering: how faces are grouped into people, on upload and by the recompute job.

An uploaded face joins the cluster of the nearest clustered face of its event within the match
threshold, or founds a new cluster (`nearest_cluster`, under `lock_event_clusters`). A recompute
(`jobs.ClusterJobWorker`) reads the event's vectors, clusters them off the event loop
(`encoder.cluster_labels`) and replaces the event's clusters in one transaction (`apply_clustering`).

`service` (uploads, search, the cluster API) and `jobs` (the worker) both call this module; it
calls neither, which is what keeps `service -> runtime -> jobs` free of a cycle.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from pgvector.sqlalchemy import Vector
from sqlalchemy import Float, Select, Table, bindparam, delete, func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.core.db import utcnow
from vigil.faces.models import EMBEDDING_DIM, Face, FaceCluster, FaceClusterJob

# --------------------------------------------------------------------------------------------
# Nearest faces, and the upload rule
# --------------------------------------------------------------------------------------------


def nearest_stmt(query: Sequence[float], *, model: str, event_id: uuid.UUID | None, top_k: int,
                 clustered_only: bool = False) -> Select[Any]:
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
    if clustered_only:
        stmt = stmt.where(Face.cluster_id.is_not(None))
    return stmt.order_by(dist).limit(top_k)


async def lock_event_clusters(session: AsyncSession, event_id: uuid.UUID) -> None:
    """Serialise cluster changes within one event until the transaction ends (uploads, recompute),
    so two photos of a new person arriving together do not found two clusters."""
    key = event_id.int & 0x7FFF_FFFF_FFFF_FFFF
    await session.execute(select(func.pg_advisory_xact_lock(key)))


async def nearest_cluster(session: AsyncSession, *, event_id: uuid.UUID, model: str, vector: Sequence[float],
                          threshold: float) -> uuid.UUID:
    """The cluster of the nearest clustered face of the event within `threshold` (L2), else a new one."""
    row = (await session.execute(
        nearest_stmt(vector, model=model, event_id=event_id, top_k=1, clustered_only=True)
    )).first()
    if row is not None and row.distance <= threshold:
        return row.cluster_id
    cluster = FaceCluster(event_id=event_id, model=model)
    session.add(cluster)
    await session.flush()
    return cluster.id


# --------------------------------------------------------------------------------------------
# The recompute job's database side (run by `jobs.ClusterJobWorker`)
# --------------------------------------------------------------------------------------------


async def claim_job(session: AsyncSession, *, stale_after_s: float) -> FaceClusterJob | None:
    """Take the oldest queued job (or one whose runner went silent) for this instance, or None: any instance may."""
    job = await session.scalar(
        select(FaceClusterJob).where(or_(
            FaceClusterJob.status == "queued",
            (FaceClusterJob.status == "running")
            & (FaceClusterJob.updated_at < utcnow() - timedelta(seconds=stale_after_s)),
        )).order_by(FaceClusterJob.created_at).limit(1).with_for_update(skip_locked=True)
    )
    if job is None:
        return None
    job.status, job.phase, job.processed, job.started_at = "running", "loading", 0, utcnow()
    await session.flush()
    return job


async def event_vectors(session: AsyncSession, *, event_id: uuid.UUID,
                        model: str) -> tuple[list[uuid.UUID], npt.NDArray[np.float32]]:
    """Ids and vectors (n x 128 float32) of the event's faces of one model: the recompute's input."""
    rows = (await session.execute(
        select(Face.id, Face.embedding).where(Face.event_id == event_id, Face.model == model)
        .order_by(Face.created_at, Face.id)
    )).all()
    vectors = np.asarray([row.embedding for row in rows], dtype=np.float32).reshape(len(rows), EMBEDDING_DIM)
    return [row.id for row in rows], vectors


async def set_job_progress(session: AsyncSession, *, job_id: uuid.UUID, **fields: Any) -> bool:
    """Record a job's progress for `GET /faces/clusters/jobs/{id}`; False when the job is gone (event deleted)."""
    result = await session.execute(
        update(FaceClusterJob).where(FaceClusterJob.id == job_id).values(**fields, updated_at=func.now())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def apply_clustering(session: AsyncSession, *, job_id: uuid.UUID, event_id: uuid.UUID, model: str,
                           face_ids: Sequence[uuid.UUID], labels: Sequence[int], threshold: float) -> int | None:
    """Replace the event's clusters with the computed ones, in one transaction under the event lock.

    Faces uploaded since the vectors were read join the new clusters by the upload rule; faces
    deleted since then are simply absent. Returns the number of clusters, None if the job is gone.
    """
    await lock_event_clusters(session, event_id)
    job = await session.scalar(select(FaceClusterJob).where(FaceClusterJob.id == job_id).with_for_update())
    if job is None:
        return None
    await session.execute(delete(FaceCluster).where(FaceCluster.event_id == event_id))  # faces -> NULL
    cluster_ids = {label: uuid.uuid4() for label in set(labels)}
    if cluster_ids:
        await session.execute(insert(FaceCluster), [{"id": c, "event_id": event_id, "model": model}
                                                    for c in cluster_ids.values()])
        # A Core executemany on the table: faces deleted meanwhile simply match no row (the ORM's
        # bulk update by primary key would call that stale data).
        faces = cast(Table, Face.__table__)  # a declarative model's __table__ is a Table
        await session.execute(
            update(faces).where(faces.c.id == bindparam("face_id")).values(cluster_id=bindparam("new_cluster")),
            [{"face_id": f, "new_cluster": cluster_ids[label]} for f, label in zip(face_ids, labels, strict=True)],
        )
    late = (await session.execute(
        select(Face.id, Face.embedding).where(Face.event_id == event_id, Face.model == model,
                                              Face.cluster_id.is_(None)).order_by(Face.created_at, Face.id)
    )).all()
    for face_id, vector in late:
        cluster_id = await nearest_cluster(session, event_id=event_id, model=model, vector=list(vector),
                                           threshold=threshold)
        await session.execute(update(Face).where(Face.id == face_id).values(cluster_id=cluster_id))
    # Labels whose faces were all deleted meanwhile leave empty clusters: drop them.
    await session.execute(delete(FaceCluster).where(
        FaceCluster.event_id == event_id, ~select(Face.id).where(Face.cluster_id == FaceCluster.id).exists()
    ))
    count = await session.scalar(select(func.count()).select_from(FaceCluster).where(FaceCluster.event_id == event_id))
    job.status, job.phase, job.processed = "done", "done", job.total
    job.clusters, job.finished_at = count, utcnow()
    await session.flush()
    return count


__all__ = [
    "apply_clustering", "claim_job", "event_vectors", "lock_event_clusters", "nearest_cluster", "nearest_stmt",
    "set_job_progress",
]
