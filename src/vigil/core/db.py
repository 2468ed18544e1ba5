"""Async engine, session factory, the declarative Base and the unit-of-work session helpers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from loguru import logger
from sqlalchemy import DateTime, MetaData, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Timezone-aware now in UTC; the only clock the app reads."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table; constraint names follow NAMING_CONVENTION."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}


class UUIDPrimaryKey:
    """Server-made UUID id."""

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)


class Timestamps:
    """created_at / updated_at kept by the database and the ORM."""

    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow, onupdate=utcnow)


def create_engine(database_url: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    """The app's one engine: asyncpg, no ping per checkout.

    A ping on every checkout is a round trip on every request. Without it, the first statement on a
    connection the database dropped fails once: SQLAlchemy then invalidates every connection opened before
    that moment, the request answers 503 (errors.py), and the next checkouts open fresh connections.
    """
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={"timeout": 5, "server_settings": {"application_name": "vigil", "timezone": "UTC"}},
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: responses are shaped from objects after the unit of work commits.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def create_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for read-only requests: autocommit, so a read is one round trip (no BEGIN, no COMMIT).

    Same pool as the engine's; each statement sees committed data as of its own start.
    """
    return async_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False,
                              autoflush=False)


_AFTER_COMMIT = "vigil_after_commit"


def after_commit(session: AsyncSession, callback: Callable[[], Awaitable[object]]) -> None:
    """Run `callback()` once this unit of work has committed (never if it rolls back).

    For side effects that must not run ahead of the data, such as invalidating a cache: done
    before the commit, a concurrent reader could cache the old rows again.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


async def commit_unit_of_work(session: AsyncSession) -> None:
    """Commit, then run the after-commit callbacks; a failing callback is logged, not raised."""
    await session.commit()
    for callback in session.info.pop(_AFTER_COMMIT, []):
        try:
            await callback()
        except Exception as exc:  # the data is committed; the caller's request succeeded
            logger.opt(exception=exc).error("after-commit callback {!r} failed", callback)


async def rollback_unit_of_work(session: AsyncSession) -> None:
    session.info.pop(_AFTER_COMMIT, None)
    await session.rollback()


@asynccontextmanager
async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit when the block succeeds, roll back when it raises."""
    async with factory() as session:
        try:
            yield session
            await commit_unit_of_work(session)
        except BaseException:
            await rollback_unit_of_work(session)
            raise
