"""Foundation: HTTP throughput with and without auth, and outbox -> Kafka -> WebSocket latency."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import websockets
from common import ADMIN, machine, pct, running_vigil, write_results

from vigil.alerts import service as alerts
from vigil.core.db import create_engine, create_sessionmaker, session_scope

DURATION_S = 8
CONCURRENCY = 16
EVENTS = 300


async def hammer(url: str, path: str, headers: dict[str, str]) -> tuple[float, list[float]]:
    latencies: list[float] = []
    stop = time.perf_counter() + DURATION_S

    async def worker(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            r = await client.get(path)
            latencies.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text

    async with httpx.AsyncClient(base_url=url, headers=headers, limits=httpx.Limits(max_connections=CONCURRENCY)) as c:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - t0
    return len(latencies) / elapsed, latencies


async def ws_latency(url: str, database_url: str) -> list[float]:
    engine = create_engine(database_url)
    factory = create_sessionmaker(engine)
    sent: dict[str, float] = {}
    got: list[float] = []
    ws_url = url.replace("http://", "ws://") + f"/ws/alerts?token={ADMIN}"
    async with websockets.connect(ws_url) as ws:
        async def receive() -> None:
            while len(got) < EVENTS:
                msg = json.loads(await ws.recv())
                subject = msg["data"]["subject"]
                if subject in sent:
                    got.append(time.perf_counter() - sent[subject])

        reader = asyncio.create_task(receive())
        for i in range(EVENTS):
            subject = f"bench-{i}"
            async with session_scope(factory) as session:
                await alerts.raise_alert(session, source="bench", kind="latency", severity="info",
                                         title="bench", subject=subject)
                sent[subject] = time.perf_counter()  # just before commit
            await asyncio.sleep(0.01)
        await asyncio.wait_for(reader, 60)
    await engine.dispose()
    return got


async def run(url: str, database_url: str) -> str:
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": ADMIN}) as c:
        assert (await c.get("/api/v1/alerts")).status_code == 200
    live_rps, live = await hammer(url, "/liveness", {})
    auth_rps, authed = await hammer(url, "/api/v1/alerts?limit=50", {"X-API-Key": ADMIN})
    lat = await ws_latency(url, database_url)
    ms = lambda v: f"{v * 1000:.1f}"  # noqa: E731
    return "\n".join([
        f"### foundation — {machine()}",
        f"- `GET /liveness` (no auth, baseline): {live_rps:.0f} req/s, p50 {ms(pct(live, 50))} ms, "
        f"p99 {ms(pct(live, 99))} ms ({CONCURRENCY} concurrent, {DURATION_S} s, one uvicorn worker)",
        f"- `GET /api/v1/alerts` (admin key, DB count + page): {auth_rps:.0f} req/s, p50 {ms(pct(authed, 50))} ms, "
        f"p99 {ms(pct(authed, 99))} ms",
        f"- alert committed -> `/ws/alerts` frame (outbox relay -> Kafka -> fan-out consumer -> hub), "
        f"{len(lat)} events: p50 {ms(pct(lat, 50))} ms, p99 {ms(pct(lat, 99))} ms, max {ms(max(lat))} ms",
    ])


def main() -> None:
    with running_vigil() as (url, settings):
        write_results("foundation", asyncio.run(run(url, settings.database_url)))


if __name__ == "__main__":
    main()
