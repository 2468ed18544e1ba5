"""The two comparison apps of bench/http.py, served by uvicorn from the project's own venv.

    python bench/_http_apps.py bare PORT
    python bench/_http_apps.py hand PORT DATABASE_URL REDIS_URL BLOB_DIR

`bare`: a FastAPI app returning a person-shaped response model, no I/O.
`hand`: hand-written FastAPI + asyncpg + redis-py doing the reads Vigil does (one person by id, the
directory JSON from one Redis GET) and a multipart plate ingest (parse, write both files, insert one row).
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from fastapi import FastAPI, HTTPException, Request, Response
from pydantic import BaseModel


class PersonOut(BaseModel):
    id: uuid.UUID
    global_id: int
    name: str
    zone_id: str | None
    created_at: datetime
    updated_at: datetime


def bare() -> FastAPI:
    app = FastAPI()
    now = datetime.now(UTC)
    person = {"id": uuid.uuid4(), "global_id": 1, "name": "hello", "zone_id": None, "created_at": now,
              "updated_at": now}

    @app.get("/hello", response_model=PersonOut)
    async def hello() -> dict:
        return person

    return app


def hand(database_url: str, redis_url: str, blob_dir: str) -> FastAPI:
    from contextlib import asynccontextmanager

    import asyncpg
    from redis.asyncio import Redis

    state: dict = {}
    blobs = Path(blob_dir)
    blobs.mkdir(parents=True, exist_ok=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state["pool"] = await asyncpg.create_pool(database_url.replace("+asyncpg", ""), min_size=10, max_size=10)
        state["redis"] = Redis.from_url(redis_url)
        async with state["pool"].acquire() as conn:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS bench_plate_events (id uuid PRIMARY KEY, event_uid text, plate text,"
                " frame text, crop text, captured_at timestamptz)"
            )
        yield
        await state["pool"].close()
        await state["redis"].aclose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/people/{person_id}", response_model=PersonOut)
    async def person(person_id: uuid.UUID) -> dict:
        row = await state["pool"].fetchrow(
            "SELECT id, global_id, name, zone_id, created_at, updated_at FROM people WHERE id = $1", person_id
        )
        if row is None:
            raise HTTPException(404)
        return dict(row)

    @app.get("/directory")
    async def directory() -> Response:
        raw = await state["redis"].get("bench:directory")
        return Response(raw, media_type="application/json")

    @app.post("/plates", status_code=201)
    async def plates(request: Request) -> dict:
        async with request.form() as form:
            event = json.loads(form["event"])
            paths = {}
            for part in ("frame", "crop"):
                data = await form[part].read()
                path = blobs / f"{uuid.uuid4().hex}.jpg"
                path.write_bytes(data)
                paths[part] = str(path)
        event_id = uuid.uuid4()
        await state["pool"].execute(
            "INSERT INTO bench_plate_events VALUES ($1, $2, $3, $4, $5, $6)", event_id, event["event_uid"],
            event["plate"], paths["frame"], paths["crop"], datetime.fromisoformat(event["captured_at"]),
        )
        return {"id": str(event_id), **event}

    return app


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    app = bare() if kind == "bare" else hand(*sys.argv[3:6])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
