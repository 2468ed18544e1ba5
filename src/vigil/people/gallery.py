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

from vigil.core.db import utcnow
from vigil.core.errors import ServiceUnavailable, ValidationFailed

T = TypeVar("T")

# Local mode is one in-process store: serialise its calls (they run in worker threads).
_local_lock = threading.Lock()
# Creating the collection is check-then-act; one creator at a time within this process.
_create_lock = asyncio.Lock()


class GalleryUnavailable(ServiceUnavailable):
    title = "ReID gallery unavailable"


class DimensionMismatch(ValidationFailed):
    title = "Wrong embedding dimension"


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
        if dimension != size:
            raise DimensionMismatch(
                f"The gallery holds {dimension}-dimensional vectors; this one has {size} values.",
                errors=[{"loc": ["body"], "msg": f"expected {dimension} values, got {size}",
                         "type": "dimension_mismatch"}],
            )

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
