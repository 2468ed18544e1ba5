"""People tests run the gallery on both backends (Qdrant, pgvector); each test starts with it empty."""

import pytest
import pytest_asyncio

from vigil.people.gallery import open_gallery


def gallery_of(server):
    return open_gallery(server.ctx, server.app.state.settings)


@pytest_asyncio.fixture(loop_scope="session", params=["qdrant", "pgvector"])
async def gallery(request, server):
    before = server.app.state.settings
    server.app.state.settings = before.model_copy(update={"gallery_backend": request.param})
    try:
        g = gallery_of(server)
        if await g.dimension() is not None:
            await g.drop()
        yield g
    finally:
        server.app.state.settings = before


@pytest.fixture
def gallery_backend(gallery):
    return "pgvector" if gallery.__class__.__name__ == "PgGallery" else "qdrant"
