"""Run Alembic from code (dev stack, tests, `vigil migrate`) and compare the database to the head."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command
from vigil.core.config import get_settings

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def resolve_database_url(explicit: str | None = None) -> str:
    """DATABASE_URL, else the URL the dev stack wrote to devstack.json."""
    url = explicit or get_settings().with_devstack().database_url
    if not url:
        raise RuntimeError("No database: set DATABASE_URL or start the dev stack (`make run`) first.")
    return url


def alembic_config(database_url: str | None = None) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    cfg.attributes["skip_logging_config"] = True
    if database_url:
        cfg.attributes["database_url"] = database_url
    return cfg


def _in_thread(fn: Callable[..., object], *args: Any) -> None:
    """env.py runs its own event loop; give it a thread so a caller's loop is never disturbed."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn(*args)
        except BaseException as exc:  # re-raised in the caller
            errors.append(exc)

    t = threading.Thread(target=target, name="alembic")
    t.start()
    t.join()
    if errors:
        raise errors[0]


def upgrade(database_url: str, revision: str = "head") -> None:
    _in_thread(command.upgrade, alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    _in_thread(command.downgrade, alembic_config(database_url), revision)


def check(database_url: str) -> None:
    """Raise if the models and the migrations disagree (alembic check)."""
    _in_thread(command.check, alembic_config(database_url))


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


async def current_revisions(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
        return {r[0] for r in rows}
