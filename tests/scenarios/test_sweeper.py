"""Scenario runs that cannot hang: a run whose runner went silent, or a job no runner claims, is swept by
the app (re-dispatched as the next attempt, then failed with an alert), so no scenario stays in
`*_processing`. The dead runner is played by the runner's own claim, made and then abandoned."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.scenarios.helpers import API, scenario, start_scenario, wait_for
from vigil.core.db import session_scope
from vigil.scenarios import runs
from vigil.scenarios.schemas import Job

pytestmark = pytest.mark.fault


async def claim_and_die(server, body: dict, runner: str) -> None:
    """What a runner does before it is SIGKILLed: claim the current run (heartbeat now), then nothing."""
    run = body["latest_run"]
    job = Job(scenario_id=uuid.UUID(body["id"]), run_id=uuid.UUID(run["id"]), source=body["source"],
              params=body["params"], attempt=run["attempt"])
    async with session_scope(server.ctx.sessionmaker) as session:
        claim = await runs.claim_run(session, job=job, runner=runner, stale_after_s=60)
    assert claim.verdict == "run", claim


async def test_runs_of_a_dead_runner_are_redispatched_then_failed_with_an_alert(server, client, tmp_path):
    max_attempts = server.ctx.settings.scenario_max_attempts
    sid = await start_scenario(client, str(server.ctx.settings.media_dir / "never-read.avi"))
    run_ids = []
    for attempt in range(1, max_attempts + 1):
        body = await wait_for(lambda: scenario(client, sid),
                              lambda b, a=attempt: b["latest_run"]["attempt"] == a
                              and b["latest_run"]["status"] == "queued")
        assert body["status"] == "init_startup_processing"
        await claim_and_die(server, body, runner=f"ghost-{attempt}")
        run_ids.append(body["latest_run"]["id"])
    body = await wait_for(lambda: scenario(client, sid), lambda b: b["status"] == "failed", timeout=60)
    assert "went silent" in body["last_error"] and f"ghost-{max_attempts}" in body["last_error"]
    runs = (await client.get(f"{API}/{sid}/runs")).json()["items"]
    assert [r["id"] for r in runs] == run_ids and {r["status"] for r in runs} == {"failed"}
    assert [r["attempt"] for r in runs] == list(range(1, max_attempts + 1))
    alerts = (await client.get("/api/v1/alerts", params={"source": "scenario"})).json()["items"]
    assert [(a["kind"], a["subject"]) for a in alerts] == [("scenario_failed", sid)]


async def test_a_job_no_runner_claims_is_swept_too(server, client, tmp_path, monkeypatch):
    monkeypatch.setattr(server.ctx.settings, "scenario_stale_queued_s", 1.0)
    monkeypatch.setattr(server.ctx.settings, "scenario_max_attempts", 2)
    sid = await start_scenario(client, str(server.ctx.settings.media_dir / "nobody.avi"))
    body = await wait_for(lambda: scenario(client, sid), lambda b: b["status"] == "failed", timeout=60)
    assert "no runner claimed the job" in body["last_error"]
    assert (await client.get(f"{API}/{sid}/runs")).json()["total"] == 2
    [alert] = (await client.get("/api/v1/alerts", params={"source": "scenario"})).json()["items"]
    assert alert["subject"] == sid


async def test_one_instance_sweeps_at_a_time(server, client, tmp_path):
    """While one instance holds the sweep's advisory lock, another instance's sweep does nothing."""
    from sqlalchemy import func, select

    sid = await start_scenario(client, str(server.ctx.settings.media_dir / "locked.avi"))
    body = await scenario(client, sid)
    await claim_and_die(server, body, runner="ghost")
    sweep = {"stale_after_s": 0.001, "queued_after_s": 600, "max_attempts": 3}
    async with session_scope(server.ctx.sessionmaker) as holder:
        for _ in range(50):  # the app's own sweeper takes the lock for a moment every second
            if await holder.scalar(select(func.pg_try_advisory_xact_lock(runs.SWEEP_LOCK_KEY))):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("never got the sweep lock")
        async with session_scope(server.ctx.sessionmaker) as other:
            assert await runs.sweep_stale_runs(other, **sweep) == []
        assert (await scenario(client, sid))["latest_run"]["attempt"] == 1
    for _ in range(50):
        async with session_scope(server.ctx.sessionmaker) as other:
            swept = await runs.sweep_stale_runs(other, **sweep)
        if swept:
            break
        await asyncio.sleep(0.05)
    assert swept == [(uuid.UUID(sid), "retried")]
    assert (await scenario(client, sid))["latest_run"]["attempt"] == 2
