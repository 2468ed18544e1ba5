"""core.deps.loader: the route keeps its path parameter (OpenAPI unchanged) and the 404 is get_or_404's."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI

from vigil.core.deps import get_session, loader
from vigil.core.errors import NotFound, install_error_handlers


class Thing:
    def __init__(self, ident: uuid.UUID) -> None:
        self.id = ident


class ThingNotFound(NotFound):
    title = "Thing not found"


class FakeSession:
    """session.get answers from a dict and records the keywords it was called with."""

    def __init__(self, rows: dict[uuid.UUID, Thing]) -> None:
        self.rows, self.calls = rows, []

    async def get(self, model: type, ident: Any, **kw: Any) -> Any:
        self.calls.append((model, ident, kw))
        return self.rows.get(ident)


ThingDep = Annotated[Thing, Depends(loader(Thing, "thing_id", error=ThingNotFound))]
LockedThingDep = Annotated[Thing, Depends(loader(Thing, "thing_id", error=ThingNotFound, lock=True))]


def make_app(session: FakeSession) -> FastAPI:
    app = FastAPI()

    @app.get("/plain/{thing_id}")
    async def plain(thing_id: uuid.UUID) -> dict:
        return {"id": str(thing_id)}

    @app.get("/loaded/{thing_id}")
    async def loaded(thing: ThingDep) -> dict:
        return {"id": str(thing.id)}

    @app.post("/locked/{thing_id}")
    async def locked(thing: LockedThingDep) -> dict:
        return {"id": str(thing.id)}

    install_error_handlers(app)

    async def fake_session():
        yield session

    app.dependency_overrides[get_session] = fake_session
    return app


def test_the_path_parameter_is_the_one_a_plain_handler_declares():
    doc = make_app(FakeSession({})).openapi()
    plain = doc["paths"]["/plain/{thing_id}"]["get"]["parameters"]
    assert doc["paths"]["/loaded/{thing_id}"]["get"]["parameters"] == plain
    assert plain == [{"name": "thing_id", "in": "path", "required": True,
                      "schema": {"type": "string", "format": "uuid", "title": "Thing Id"}}]


async def test_loads_the_row_or_raises_the_domain_404():
    known = uuid.uuid4()
    session = FakeSession({known: Thing(known)})
    transport = httpx.ASGITransport(app=make_app(session))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        assert (await c.get(f"/loaded/{known}")).json() == {"id": str(known)}
        missing = uuid.uuid4()
        r = await c.get(f"/loaded/{missing}")
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
        assert (r.json()["title"], r.json()["detail"]) == ("Thing not found", f"Thing {missing} does not exist.")
        assert (await c.get("/loaded/not-a-uuid")).status_code == 422  # validated before any lookup
        await c.post(f"/locked/{known}")
    assert [kw for _, _, kw in session.calls] == [{"options": []}, {"options": []}, {"options": [],
                                                                                   "with_for_update": True}]
