"""Async Alembic environment: every domain's models come in through `vigil.models`."""

import asyncio
from logging.config import fileConfig

from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from alembic import context
from vigil.core.migrations import resolve_database_url
from vigil.models import metadata

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging_config"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = metadata


def include_object(obj, name, type_, reflected, compare_to):
    # Extensions' own objects are not ours to diff; nor the HNSW index a pgvector ReID gallery makes
    # for its dimension at run time (people/gallery.py).
    if type_ == "index" and reflected and compare_to is None and (name or "").startswith("ix_reid_embeddings_hnsw_"):
        return False
    return not (type_ == "table" and reflected and compare_to is None and name in {"spatial_ref_sys"})


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=False,
        include_object=include_object,
        literal_binds=connection is None,
    )


def run_migrations_offline() -> None:
    _configure(url=resolve_database_url(config.attributes.get("database_url")))
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = create_async_engine(resolve_database_url(config.attributes.get("database_url")), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync)
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
