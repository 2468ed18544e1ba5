"""Fixtures of the platform tests that need a database of their own (the outbox, the relay, consumers)."""

import pytest
import pytest_asyncio

from vigil.core import migrations
from vigil.core.db import create_engine, create_sessionmaker
from vigil.core.devstack import ensure_database


@pytest.fixture(scope="module")
def scratch_db(stack, request):
    """A migrated, empty database per test module (`vigil_<module>`) on the session's embedded PostgreSQL."""
    if "postgres" not in stack.processes:
        pytest.skip("needs the embedded PostgreSQL")
    port = stack.processes["postgres"].port
    name = "vigil_" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    ensure_database(port, name, drop_first=True)
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{name}"
    migrations.upgrade(url)
    return url


@pytest_asyncio.fixture(loop_scope="session")
async def sessionmaker(scratch_db):
    engine = create_engine(scratch_db)
    yield create_sessionmaker(engine)
    await engine.dispose()
