"""People rules: unique `global_id`, zones that exist, the cached directory, the ReID gallery.

Every person write invalidates the directory once the unit of work has committed. Zones are
reached only through `vigil.zones.service`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import timedelta
from typing import Any, cast

from loguru import logger
from sqlalchemy import CursorResult, Table, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.core.cache import Cache
from vigil.core.crud import apply_patch, ensure_unique, get_or_404, patch_changes, unknown_reference
from vigil.core.db import after_commit, utcnow
from vigil.core.errors import Conflict, NotFound, ValidationFailed
from vigil.core.pagination import PageParams, paginate
from vigil.people.gallery import AnyGallery
from vigil.people.models import Person, ReidMessage
from vigil.people.schemas import PersonCreate, PersonUpdate
from vigil.zones import service as zones_service

DIRECTORY_CACHE = "people.directory"


class PersonNotFound(NotFound):
    title = "Person not found"


class DuplicateGlobalId(Conflict):
    title = "Duplicate global_id"


class UnknownZone(ValidationFailed):
    title = "Unknown zone"


class InvalidVector(ValidationFailed):
    title = "Invalid embedding"


def invalidate_directory(session: AsyncSession, *, cache: Cache) -> None:
    """Drop the cached directory once this unit of work commits (zones call this too)."""
    after_commit(session, lambda: cache.invalidate(DIRECTORY_CACHE))


async def invalidate_directory_now(*, cache: Cache) -> None:
    """Drop the cached directory at once (an operator's explicit invalidate, not a write)."""
    await cache.invalidate(DIRECTORY_CACHE)


async def _check_zone(session: AsyncSession, zone_id: str | None) -> None:
    if zone_id is not None and not await zones_service.zone_exists(session, zone_id=zone_id):
        raise unknown_reference("zone_id", zone_id, error=UnknownZone)


async def _check_global_id(session: AsyncSession, global_id: int, *,
                           other_than: uuid.UUID | None = None) -> None:
    await ensure_unique(session, Person, global_id=global_id, exclude_id=other_than, error=DuplicateGlobalId,
                        detail=f"A person with global_id {global_id} already exists.")


async def get_person(session: AsyncSession, *, person_id: uuid.UUID) -> Person:
    """One person by id, or 404."""
    return await get_or_404(session, Person, person_id, error=PersonNotFound)


async def find_by_global_id(session: AsyncSession, *, global_id: int) -> Person | None:
    """The person with this ReID global id, or None (the alert consumer resolves names this way)."""
    return await session.scalar(select(Person).where(Person.global_id == global_id))


async def find_by_global_ids(session: AsyncSession, *, global_ids: Collection[int]) -> dict[int, Person]:
    """The people with these ReID global ids, by global id (one query for a consumer's whole batch)."""
    if not global_ids:
        return {}
    rows = await session.scalars(select(Person).where(Person.global_id.in_(list(global_ids))))
    return {person.global_id: person for person in rows}


async def get_by_global_id(session: AsyncSession, *, global_id: int) -> Person:
    """The person with this natural key (the seed's `/users/{id}`), or 404."""
    person = await find_by_global_id(session, global_id=global_id)
    if person is None:
        raise PersonNotFound(f"No person has global_id {global_id}.")
    return person


async def list_people(session: AsyncSession, *, page: PageParams, q: str | None = None,
                      zone_id: str | None = None) -> dict:
    """By `global_id`; `q` matches anywhere in the name, case-insensitively."""
    stmt = select(Person)
    if q:
        stmt = stmt.where(Person.name.icontains(q, autoescape=True))
    if zone_id is not None:
        stmt = stmt.where(Person.zone_id == zone_id)
    return await paginate(session, stmt.order_by(Person.global_id), page)


# One round trip: the unique index on global_id answers "taken?" (no row back) while inserting.
_INSERT_PERSON = (
    insert(cast(Table, Person.__table__))
    .values(global_id=bindparam("global_id"), name=bindparam("name"), zone_id=bindparam("zone_id"))
    .on_conflict_do_nothing(index_elements=["global_id"])
    .returning(*Person.__table__.c)
)


async def create_person(session: AsyncSession, *, person_in: PersonCreate, cache: Cache) -> dict[str, Any]:
    """Create a person: `global_id` is unique and the zone, if given, must exist. Returns the row's
    columns (nothing reads the new person as an entity, so no ORM object is built for it)."""
    await _check_zone(session, person_in.zone_id)
    created = (await session.execute(_INSERT_PERSON, {
        "global_id": person_in.global_id, "name": person_in.name, "zone_id": person_in.zone_id,
    })).mappings().first()
    if created is None:
        raise DuplicateGlobalId(f"A person with global_id {person_in.global_id} already exists.")
    invalidate_directory(session, cache=cache)
    # DEBUG: creates come in bulk (edge sync); the access line and the audit log already record each one.
    logger.debug("person {} created (global_id {}, zone {})", created["id"], person_in.global_id, person_in.zone_id)
    return dict(created)


async def update_person(session: AsyncSession, *, person_id: uuid.UUID,
                        person_in: PersonUpdate | PersonCreate, cache: Cache) -> Person:
    """PATCH with a PersonUpdate (fields given), PUT with a PersonCreate (every field)."""
    person = await get_person(session, person_id=person_id)
    if isinstance(person_in, PersonUpdate):
        changes = patch_changes(person_in)
    else:  # PUT replaces every field; a zone left out becomes null
        changes = {f: getattr(person_in, f) for f in PersonCreate.model_fields}
    if "global_id" in changes:
        await _check_global_id(session, changes["global_id"], other_than=person.id)
    if "zone_id" in changes:
        await _check_zone(session, changes["zone_id"])
    apply_patch(person, changes)
    await session.flush()
    invalidate_directory(session, cache=cache)
    logger.info("person {} updated ({})", person.id, ", ".join(sorted(changes)) or "nothing")
    return person


async def delete_person(session: AsyncSession, *, person: Person, cache: Cache,
                        gallery: AnyGallery | None) -> None:
    """Delete the row, then the person's vectors; if the gallery fails, the row stays (rolled back)."""
    person_id = person.id
    await session.delete(person)
    await session.flush()
    if gallery is not None:
        await gallery.remove_person(person_id)
    invalidate_directory(session, cache=cache)
    logger.info("person {} deleted (global_id {})", person_id, person.global_id)


async def _build_directory(session: AsyncSession) -> dict[str, dict[str, Any]]:
    stmt = select(Person.global_id, Person.name, Person.zone_id).order_by(Person.global_id)
    rows = await session.execute(stmt)
    return {str(g): {"name": n, "zone_id": z} for g, n, z in rows}


async def directory_json(sessions: Callable[[], AsyncSession], *, cache: Cache) -> bytes:
    """The directory as JSON bytes, straight from the cache on a hit (no decode and re-encode).

    `sessions` opens a session only on a miss: a hit touches Redis and nothing else.
    """
    async def build() -> dict[str, dict[str, Any]]:
        async with sessions() as session:
            return await _build_directory(session)

    return await cache.get_or_set_json(DIRECTORY_CACHE, "all", build)


async def count_by_zone(session: AsyncSession) -> dict[str | None, int]:
    """People per zone_id (None: people without a zone)."""
    rows = await session.execute(select(Person.zone_id, func.count()).group_by(Person.zone_id))
    # Not dict(rows): a Result has keys(), so dict() would take it for a mapping of column names.
    return {zone_id: count for zone_id, count in rows}  # noqa: C416


async def stats(session: AsyncSession) -> dict[str, Any]:
    """How many people there are, in total and per zone (biggest first, no zone last)."""
    counts = await count_by_zone(session)
    by_zone = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))
    return {"total": sum(counts.values()), "by_zone": [{"zone_id": z, "count": c} for z, c in by_zone]}


async def count_in_zone(session: AsyncSession, *, zone_id: str) -> int:
    """How many people are in the zone (the zones domain asks before deleting one)."""
    return await session.scalar(select(func.count()).where(Person.zone_id == zone_id)) or 0


async def clear_zone(session: AsyncSession, *, zone_id: str, cache: Cache) -> int:
    """Take everyone out of one zone (before the zone is deleted); returns how many."""
    result = await session.execute(
        update(Person).where(Person.zone_id == zone_id).values(zone_id=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    invalidate_directory(session, cache=cache)
    return cast(CursorResult[Any], result).rowcount or 0


# The gallery (Qdrant) normalises vectors in 32-bit floats: outside these lengths the sum of squares
# overflows or vanishes there, and the stored vector would score NaN against every query.
MIN_NORM, MAX_NORM = 1e-18, 1e18


def _check_vectors(vectors: Sequence[Sequence[float]]) -> None:
    size = len(vectors[0])
    for i, vector in enumerate(vectors):
        if len(vector) != size:
            raise InvalidVector(f"Vector {i} has {len(vector)} values; vector 0 has {size}. "
                                "All vectors of one request must have the same dimension.")
        norm = math.sqrt(math.fsum(x * x for x in vector))
        if norm == 0.0:
            raise InvalidVector(f"Vector {i} is all zeros; cosine similarity needs a direction.")
        if not MIN_NORM <= norm <= MAX_NORM:
            raise InvalidVector(f"Vector {i} has length {norm:.3g}; the gallery normalises vectors in 32-bit "
                                f"floats, which needs a length between {MIN_NORM:g} and {MAX_NORM:g}.")


async def add_embeddings(session: AsyncSession, *, person_id: uuid.UUID, vectors: Sequence[Sequence[float]],
                         camera_id: str | None, model: str | None, gallery: AnyGallery) -> dict[str, int]:
    """Store ReID vectors of an existing person in the gallery; the person cannot vanish meanwhile."""
    # Key-share lock: a concurrent delete of this person waits until the vectors are stored.
    person = await get_or_404(session, Person, person_id, error=PersonNotFound,
                              with_for_update={"key_share": True})
    _check_vectors(vectors)
    dimension = await gallery.add(person_id=person.id, global_id=person.global_id, vectors=vectors,
                                  camera_id=camera_id, model=model)
    logger.info("stored {} embeddings of person {} (global_id {}, camera {})", len(vectors), person.id,
                person.global_id, camera_id)
    return {"stored": len(vectors), "dimension": dimension}


async def identify(session: AsyncSession, *, vector: Sequence[float], top_k: int, min_score: float,
                   gallery: AnyGallery) -> list[dict[str, Any]]:
    """The people whose stored vectors are closest (cosine), best first, one entry per person."""
    _check_vectors([vector])
    hits = await gallery.search(vector, top_k=top_k, min_score=min_score)
    if not hits:
        return []
    ids = [uuid.UUID(pid) for pid, _ in hits]
    people = {p.id: p for p in (await session.scalars(select(Person).where(Person.id.in_(ids)))).all()}
    # Vectors of a person deleted while we searched are skipped rather than reported.
    return [{"person_id": p.id, "global_id": p.global_id, "name": p.name, "score": score}
            for pid, score in hits if (p := people.get(uuid.UUID(pid))) is not None]


# --- the person_reid_alerts consumer's ledger ----------------------------------------------

REID_LEDGER_DAYS = 7


async def claim_reid_message(session: AsyncSession, *, digest: str) -> bool:
    """Record a consumed record in this unit of work; False when it was handled before."""
    claimed = await session.scalar(
        insert(ReidMessage).values(digest=digest, seen_at=utcnow())
        .on_conflict_do_nothing(index_elements=[ReidMessage.digest]).returning(ReidMessage.digest)
    )
    return claimed is not None


async def claim_reid_messages(session: AsyncSession, *, digests: Sequence[str]) -> set[str]:
    """Record many consumed records in one statement; returns the digests not handled before."""
    if not digests:
        return set()
    now = utcnow()
    # executemany form of one statement built once (insertmanyvalues batches it): a multi-VALUES
    # statement is compiled afresh for every batch size, which cost more than the database work.
    claimed = await session.scalars(_CLAIM, [{"digest": d, "seen_at": now} for d in dict.fromkeys(digests)])
    return set(claimed.all())


_CLAIM = (insert(ReidMessage).on_conflict_do_nothing(index_elements=[ReidMessage.digest])
          .returning(ReidMessage.digest))


async def prune_reid_ledger(session: AsyncSession) -> int:
    """Forget records older than the window; a redelivery comes within seconds, not days."""
    cutoff = utcnow() - timedelta(days=REID_LEDGER_DAYS)
    result = await session.execute(delete(ReidMessage).where(ReidMessage.seen_at < cutoff))
    return cast(CursorResult[Any], result).rowcount or 0
