"""People tests share the session's Qdrant gallery: each test starts with it empty."""

import pytest_asyncio

from vigil.people.gallery import Gallery


def gallery_of(server) -> Gallery:
    ctx = server.ctx
    return Gallery(ctx.qdrant, collection=ctx.settings.reid_collection, local=ctx.settings.qdrant_url is None)


@pytest_asyncio.fixture(loop_scope="session")
async def gallery(server):
    g = gallery_of(server)
    if await g.dimension() is not None:
        await g.drop()
    yield g
