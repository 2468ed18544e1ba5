"""Migrations are the schema: they round-trip, and `alembic check` finds nothing to add."""

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from vigil.core import migrations
from vigil.core.devstack import ensure_database


@pytest.fixture(scope="module")
def scratch_url(stack):
    if "postgres" not in stack.processes:
        pytest.skip("needs the embedded PostgreSQL to create a scratch database")
    port = stack.processes["postgres"].port
    ensure_database(port, "vigil_migrations", drop_first=True)
    return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/vigil_migrations"


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
            return {r[0] for r in rows}
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade(scratch_url):
    await asyncio.to_thread(migrations.upgrade, scratch_url)
    tables = await _tables(scratch_url)
    assert {"api_keys", "outbox", "alembic_version"} <= tables
    await asyncio.to_thread(migrations.downgrade, scratch_url, "base")
    assert await _tables(scratch_url) == {"alembic_version"}
    await asyncio.to_thread(migrations.upgrade, scratch_url)
    assert await _tables(scratch_url) == tables


async def test_models_match_migrations(scratch_url):
    await asyncio.to_thread(migrations.upgrade, scratch_url)
    await asyncio.to_thread(migrations.check, scratch_url)  # raises on any difference
