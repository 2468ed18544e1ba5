"""The ReID gallery: person embeddings in one Qdrant collection (cosine), dimension fixed by the first vector.

Qdrant's local mode (the default, under the data dir) answers through `async def` methods that do
their numpy search and SQLite writes inline, so here its calls run in a worker thread, one at a time;
against a Qdrant server the async client is used as is.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from loguru import logger
from qdrant_client import models
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError

from vigil.core.db import session_scope, utcnow
from vigil.core.errors import ServiceUnavailable, ValidationFailed
from vigil.people.models import ReidEmbedding, ReidGallery

T = TypeVar("T")

# Local mode is one in-process store: serialise its calls (they run in worker threads).
_local_lock = threading.Lock()
# Creating the collection is check-then-act; one creator at a time within this process.
_create_lock = asyncio.Lock()


class GalleryUnavailable(ServiceUnavailable):
    title = "ReID gallery unavailable"


class DimensionMismatch(ValidationFailed):
    title = "Wrong embedding dimension"


def check_dimension(dimension: int, size: int) -> None:
    """422 unless a vector of `size` values fits a gallery of `dimension`."""
    if dimension != size:
        raise DimensionMismatch(
            f"The gallery holds {dimension}-dimensional vectors; this one has {size} values.",
            errors=[{"loc": ["body"], "msg": f"expected {dimension} values, got {size}",
                     "type": "dimension_mismatch"}],
        )


def _run_local(call: Callable[[], Awaitable[T]]) -> T:
    with _local_lock:
        return asyncio.run(call())  # type: ignore[arg-type]


@dataclass
class Gallery:
    client: Any  # AsyncQdrantClient
    collection: str
    local: bool

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            if self.local:
                return await asyncio.to_thread(_run_local, call)
            return await call()
        except (ValidationFailed, ServiceUnavailable):
            raise
        except Exception as exc:  # connection refused, timeouts, server errors
            logger.error("qdrant call on {} failed: {!r}", self.collection, exc)
            raise GalleryUnavailable(f"The ReID gallery cannot be reached: {type(exc).__name__}.") from exc

    async def dimension(self) -> int | None:
        """The collection's vector size, or None while the gallery is empty (no collection yet)."""

        async def read() -> int | None:
            if not await self.client.collection_exists(self.collection):
                return None
            info = await self.client.get_collection(self.collection)
            return int(info.config.params.vectors.size)

        return await self._call(read)

    async def _ensure(self, size: int) -> int:
        """The collection's dimension, creating the collection with `size` if there is none yet."""
        async with _create_lock:
            current = await self.dimension()
            if current is not None:
                return current

            async def create() -> None:
                params = models.VectorParams(size=size, distance=models.Distance.COSINE)
                await self.client.create_collection(self.collection, vectors_config=params)
                if not self.local:  # indexes do nothing in local mode (and it warns about them)
                    await self.client.create_payload_index(self.collection, "person_id",
                                                           models.PayloadSchemaType.KEYWORD)

            try:
                await self._call(create)
                logger.info("reid gallery {} created with dimension {}", self.collection, size)
            except GalleryUnavailable:
                # Another instance may have created it first: its dimension then rules.
                current = await self.dimension()
                if current is None:
                    raise
                return current
            return size

    async def _check(self, dimension: int, size: int) -> None:
        check_dimension(dimension, size)

    async def add(self, *, person_id: uuid.UUID, global_id: int, vectors: Sequence[Sequence[float]],
                  camera_id: str | None, model: str | None) -> int:
        """Store vectors of one person; returns the collection's dimension."""
        dimension = await self._ensure(len(vectors[0]))
        await self._check(dimension, len(vectors[0]))
        payload = {"person_id": str(person_id), "global_id": global_id, "camera_id": camera_id,
                   "model": model, "created_at": utcnow().isoformat()}
        points = [models.PointStruct(id=str(uuid.uuid4()), vector=list(v), payload=payload) for v in vectors]
        await self._call(lambda: self.client.upsert(self.collection, points=points, wait=True))
        return dimension

    async def search(self, vector: Sequence[float], *, top_k: int,
                     min_score: float) -> list[tuple[str, float]]:
        """Best `top_k` people (one best vector each) as (person_id, score), best first."""
        dimension = await self.dimension()
        if dimension is None:
            return []
        await self._check(dimension, len(vector))
        result = await self._call(lambda: self.client.query_points_groups(
            self.collection, group_by="person_id", query=list(vector), limit=top_k, group_size=1,
            score_threshold=min_score, with_payload=False,
        ))
        return [(str(g.id), float(g.hits[0].score)) for g in result.groups if g.hits]

    async def remove_person(self, person_id: uuid.UUID) -> None:
        """Delete every vector of one person (nothing to do while the gallery is empty)."""
        if await self.dimension() is None:
            return
        selector = models.FilterSelector(filter=models.Filter(must=[
            models.FieldCondition(key="person_id", match=models.MatchValue(value=str(person_id)))
        ]))
        await self._call(lambda: self.client.delete(self.collection, points_selector=selector, wait=True))

    async def count(self, person_id: uuid.UUID | None = None) -> int:
        if await self.dimension() is None:
            return 0
        flt = None if person_id is None else models.Filter(must=[
            models.FieldCondition(key="person_id", match=models.MatchValue(value=str(person_id)))
        ])
        result = await self._call(lambda: self.client.count(self.collection, count_filter=flt, exact=True))
        return int(result.count)

    async def drop(self) -> None:
        """Delete the whole collection (tests, and a reset of the demo data)."""
        await self._call(lambda: self.client.delete_collection(self.collection))


# --------------------------------------------------------------------------------------------
# pgvector: the gallery in PostgreSQL, shared by every instance (VIGIL_GALLERY_BACKEND=pgvector)
# --------------------------------------------------------------------------------------------


def _vector_literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


@dataclass
class PgGallery:
    """The same gallery in `reid_embeddings`, searched through an HNSW index (cosine) per dimension.

    Behaviour matches the Qdrant gallery: the first vector fixes the dimension (422 otherwise),
    `search` gives the best `top_k` people, one best vector each, with cosine similarity > min_score.
    Vectors leave with their person by the foreign key, in the person's own delete transaction.
    """

    sessionmaker: Any  # async_sessionmaker[AsyncSession]
    collection: str
    ef_search: int = 200
    local: bool = False

    async def dimension(self) -> int | None:
        async with self.sessionmaker() as session:
            return await session.scalar(select(ReidGallery.dimension).where(ReidGallery.collection == self.collection))

    async def _ensure(self, size: int) -> int:
        """The gallery's dimension, creating it (row and HNSW index) with `size` if there is none yet."""
        current = await self.dimension()
        if current is not None:
            return current
        async with session_scope(self.sessionmaker) as session:
            await session.execute(pg_insert(ReidGallery).values(collection=self.collection, dimension=size,
                                                             created_at=utcnow()).on_conflict_do_nothing())
        dimension = await self.dimension()
        if dimension is None:
            raise GalleryUnavailable("The ReID gallery could not be created.")
        try:
            async with session_scope(self.sessionmaker) as session:
                # `dim = N` keeps other galleries' vectors (other sizes) out of the cast.
                await session.execute(text(
                    f"CREATE INDEX IF NOT EXISTS ix_reid_embeddings_hnsw_{dimension} ON reid_embeddings "
                    f"USING hnsw ((embedding::vector({dimension})) vector_cosine_ops) WHERE dim = {dimension}"
                ))
        except DBAPIError as exc:  # a concurrent creator won the race for the same index
            if "already exists" not in str(exc) and "duplicate key" not in str(exc):
                raise
        logger.info("reid gallery {} (pgvector) has dimension {}", self.collection, dimension)
        return dimension

    async def add(self, *, person_id: uuid.UUID, global_id: int, vectors: Sequence[Sequence[float]],
                  camera_id: str | None, model: str | None) -> int:
        """Store vectors of one person in one transaction; returns the gallery's dimension."""
        dimension = await self._ensure(len(vectors[0]))
        check_dimension(dimension, len(vectors[0]))
        now = utcnow()
        rows = [{"id": uuid.uuid4(), "collection": self.collection, "person_id": person_id, "global_id": global_id,
                 "camera_id": camera_id, "model": model, "dim": dimension, "embedding": list(map(float, v)),
                 "created_at": now} for v in vectors]
        async with session_scope(self.sessionmaker) as session:
            await session.execute(insert(ReidEmbedding), rows)
        return dimension

    async def search(self, vector: Sequence[float], *, top_k: int,
                     min_score: float) -> list[tuple[str, float]]:
        """Best `top_k` people (one best vector each) as (person_id, score), best first.

        HNSW returns vectors, not people: fetch a few per wanted person and widen while a person
        with several close vectors crowds the others out.
        """
        dimension = await self.dimension()
        if dimension is None:
            return []
        check_dimension(dimension, len(vector))
        n = int(dimension)  # an int, not text: the only value formatted into the SQL below
        # pgvector's vector(n) cast cannot take a bind parameter, hence the f-string (S608).
        sql = text(
            f"SELECT person_id, 1 - (embedding::vector({n}) <=> CAST(:q AS vector({n}))) AS score "  # noqa: S608
            f"FROM reid_embeddings WHERE dim = {n} AND collection = :c "
            f"ORDER BY embedding::vector({n}) <=> CAST(:q AS vector({n})) LIMIT :k"
        )
        q = _vector_literal(vector)
        fetch = max(top_k * 4, 20)
        while True:
            async with self.sessionmaker() as session, session.begin():
                # HNSW yields at most ef_search rows: make room for what we ask.
                await session.execute(text("SELECT set_config('hnsw.ef_search', :ef, true)"),
                                      {"ef": str(min(max(self.ef_search, fetch), 1000))})
                rows = (await session.execute(sql, {"q": q, "c": self.collection, "k": fetch})).all()
            best: dict[str, float] = {}
            for person_id, score in rows:
                if score <= min_score:  # as Qdrant's score_threshold: strictly above it
                    break  # ordered by distance: the rest score lower still
                best.setdefault(str(person_id), float(score))
            exhausted = len(rows) < fetch or bool(rows and rows[-1].score <= min_score)
            if len(best) >= top_k or exhausted or fetch >= 1000:
                return sorted(best.items(), key=lambda kv: kv[1], reverse=True)[:top_k]
            fetch = min(fetch * 4, 1000)

    async def remove_person(self, person_id: uuid.UUID) -> None:
        """Nothing to do: the foreign key deletes the vectors with the person's row, in its transaction."""

    async def count(self, person_id: uuid.UUID | None = None) -> int:
        stmt = select(func.count()).select_from(ReidEmbedding).where(ReidEmbedding.collection == self.collection)
        if person_id is not None:
            stmt = stmt.where(ReidEmbedding.person_id == person_id)
        async with self.sessionmaker() as session:
            return int(await session.scalar(stmt) or 0)

    async def drop(self) -> None:
        """Delete the whole gallery (its vectors go by cascade; tests, and a reset of the demo data)."""
        async with session_scope(self.sessionmaker) as session:
            await session.execute(delete(ReidGallery).where(ReidGallery.collection == self.collection))


# Either backend: the same methods, chosen by VIGIL_GALLERY_BACKEND.
AnyGallery = Gallery | PgGallery


def open_gallery(ctx: Any, settings: Any) -> AnyGallery | None:
    """The gallery `VIGIL_GALLERY_BACKEND` names, or None when that is Qdrant and this instance has none."""
    if settings.gallery_backend == "pgvector":
        return PgGallery(ctx.sessionmaker, collection=settings.reid_collection,
                         ef_search=settings.gallery_hnsw_ef_search)
    if ctx.qdrant is None:
        return None
    return Gallery(ctx.qdrant, collection=settings.reid_collection, local=settings.qdrant_url is None)
