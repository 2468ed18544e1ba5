"""Admin routes of the event pipeline: parked outbox rows, dead-letter topics and their replay."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Query

from vigil.core.deps import CtxDep, SessionDep
from vigil.core.pagination import Page, PageDep
from vigil.core.routing import Router
from vigil.core.security import requires
from vigil.platform import service
from vigil.platform.schemas import DeadLetters, OutboxRow, Replayed

router = Router(prefix="/admin", tags=["platform"])


@router.get("/outbox", response_model=Page[OutboxRow])
@requires("admin")
async def list_outbox(
    session: SessionDep, page: PageDep,
    status: Annotated[Literal["parked", "pending"], Query(description="parked: refused by the broker")] = "parked",
) -> dict:
    """Outbox rows by state: `parked` rows are events the broker refused, with the reason."""
    return await service.list_outbox(session, status=status, page=page)


@router.get("/dlq", response_model=list[DeadLetters])
@requires("admin")
async def list_dead_letters(ctx: CtxDep) -> list[dict]:
    """Every dead-letter topic with how many dead letters wait to be replayed."""
    return await service.list_dead_letters(ctx)


@router.post("/dlq/{topic}/replay", response_model=Replayed)
@requires("admin")
async def replay_dead_letters(
    ctx: CtxDep,
    topic: Annotated[str, Path(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$")],
    limit: Annotated[int | None, Query(ge=1, le=1_000_000, description="At most this many (default all)")] = None,
) -> dict:
    """Send a topic's dead letters back to it (`topic` or `topic.dlq`); each is replayed once."""
    return {"replayed": await service.replay_dead_letters(ctx, topic=topic, limit=limit)}
