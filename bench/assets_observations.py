"""Assets pipeline throughput on this machine, end to end on the embedded services.

    .venv/bin/python bench/assets_observations.py [--messages 20000] [--tags 200] [--http-batches 20]

1. Broker: N readings of T tags (4 gateways each) are put on `observations` (keyed by tag_id) before the
   app starts; then the app starts and we time how long its consumer takes to store them all
   (observations/s, broker -> database), and until every tag has a location estimate.
2. HTTP: batches of 1,000 readings to POST /api/v1/observations, one after another (observations/s).
3. Accuracy: locate.py on synthetic data (4 gateways, 20 x 20 m, sigma 2.5 dB, 10 readings per window).

Writes bench/results/assets_observations.json and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import uvicorn
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr
from sqlalchemy import func, select

from vigil.assets.assets.models import Asset
from vigil.assets.assets.schemas import AssetCreate
from vigil.assets.assets.service import create_asset
from vigil.assets.gateways.schemas import GatewayCreate
from vigil.assets.gateways.service import create_gateway
from vigil.assets.sites.schemas import SiteCreate
from vigil.assets.sites.service import create_site
from vigil.assets.tracking.locate import Reading, distance_to_rssi, locate, smooth
from vigil.assets.tracking.models import LocationEstimate, Observation
from vigil.core.config import Settings
from vigil.core.db import create_engine, create_sessionmaker, session_scope
from vigil.core.devstack import DevStack, free_port
from vigil.core.logging import setup_logging
from vigil.core.messaging import ensure_topics
from vigil.core.migrations import upgrade
from vigil.registry import REDPANDA_TOPICS

warnings.filterwarnings("ignore", module="platformdirs")
CORNERS = {"gw-sw": (0.0, 0.0), "gw-se": (20.0, 0.0), "gw-nw": (0.0, 20.0), "gw-ne": (20.0, 20.0)}
KEY = "bench-admin-key-0123456789"


def accuracy_figures(trials: int = 1000) -> dict[str, float]:
    rng = np.random.default_rng(42)
    errors = []
    started = time.perf_counter()
    for _ in range(trials):
        truth = rng.uniform(0, 20, 2)
        readings = [Reading(x, y, smooth(distance_to_rssi(math.dist(truth, (x, y))) + rng.normal(0, 2.5, 10)))
                    for x, y in CORNERS.values()]
        est = locate(readings)
        errors.append(math.dist((est.x, est.y), truth))
    return {"median_error_m": round(float(np.median(errors)), 3),
            "p90_error_m": round(float(np.percentile(errors, 90)), 3),
            "locate_ms": round((time.perf_counter() - started) / trials * 1000, 3)}


async def seed(settings: Settings, tags: int) -> list[str]:
    engine = create_engine(settings.database_url or "")
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            site = await create_site(session, site_in=SiteCreate(name="bench"))
            for name, (x, y) in CORNERS.items():
                await create_gateway(session, gateway_in=GatewayCreate(name=name, site_id=site.id, x=x, y=y))
            for i in range(tags):
                await create_asset(session, asset_in=AssetCreate(name=f"tag {i}", tag_id=f"BENCH-{i:05d}"))
    finally:
        await engine.dispose()
    return [f"BENCH-{i:05d}" for i in range(tags)]


async def produce(bootstrap: str, tags: list[str], messages: int) -> None:
    await ensure_topics(bootstrap, REDPANDA_TOPICS)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1)
    await producer.start()
    rng = np.random.default_rng(1)
    start = datetime.now(UTC) - timedelta(minutes=5)
    try:
        futures = []
        for i in range(messages):
            tag = tags[(i // 4) % len(tags)]
            gw, pos = list(CORNERS.items())[i % 4]
            truth = (5.0 + (hash(tag) % 10), 5.0 + (hash(tag) % 7))
            reading = {"gateway_id": gw, "tag_id": tag, "observed_at": (start + timedelta(milliseconds=i)).isoformat(),
                       "rssi": round(float(distance_to_rssi(math.dist(truth, pos)) + rng.normal(0, 2.5)), 2)}
            futures.append(await producer.send("observations", json.dumps(reading).encode(), key=tag.encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def count(sessionmaker, model) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def main(args: argparse.Namespace) -> dict:
    setup_logging("WARNING")
    results: dict = {"machine_cpus": __import__("os").cpu_count(), "messages": args.messages, "tags": args.tags}
    results["accuracy"] = accuracy_figures()
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        stack = DevStack(Path(tmp) / "stack", fast=True)
        settings = stack.start(Settings(_env_file=None))
        try:
            upgrade(settings.database_url or "")
            settings = settings.model_copy(update={"admin_key": SecretStr(KEY), "port": free_port(),
                                                   "data_dir": Path(tmp) / "app", "dev_runners": 0})
            tags = await seed(settings, args.tags)
            t = time.perf_counter()
            await produce(settings.redpanda or "", tags, args.messages)
            results["produce_s"] = round(time.perf_counter() - t, 2)

            from vigil.main import create_app

            app = create_app(settings)
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_config=None,
                                                   access_log=False, lifespan="on"))
            server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
            task = asyncio.create_task(server.serve())
            while not server.started:
                await asyncio.sleep(0.05)
            await asyncio.wait_for(app.state.runtime.consumers_started.wait(), 60)
            sm = app.state.ctx.sessionmaker
            started = time.perf_counter()
            while (stored := await count(sm, Observation)) < args.messages:
                await asyncio.sleep(0.2)
                if time.perf_counter() - started > 600:
                    break
            took = time.perf_counter() - started
            results["broker_to_db"] = {"stored": stored, "seconds": round(took, 2),
                                       "observations_per_s": round(stored / took, 1)}
            while True:
                async with sm() as session:
                    located = await session.scalar(select(func.count(func.distinct(LocationEstimate.asset_id))))
                if located >= args.tags or time.perf_counter() - started > 600:
                    break
                await asyncio.sleep(0.2)
            results["all_tags_located_s"] = round(time.perf_counter() - started, 2)
            results["estimates"] = await count(sm, LocationEstimate)

            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}",
                                         headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as client:
                base = datetime.now(UTC) - timedelta(minutes=1)
                sent = 0
                t = time.perf_counter()
                for b in range(args.http_batches):
                    batch = [{"gateway_id": list(CORNERS)[i % 4], "tag_id": tags[(i // 4) % len(tags)], "rssi": -60.0,
                              "observed_at": (base + timedelta(microseconds=b * 1000 + i)).isoformat()}
                             for i in range(1000)]
                    r = await client.post("/api/v1/observations", json={"observations": batch})
                    r.raise_for_status()
                    sent += r.json()["stored"]
                took = time.perf_counter() - t
                results["http_batches_of_1000"] = {"stored": sent, "seconds": round(took, 2),
                                                   "observations_per_s": round(sent / took, 1)}
            async with sm() as session:
                results["assets"] = await session.scalar(select(func.count()).select_from(Asset))
            server.should_exit = True
            await asyncio.wait_for(task, 60)
        finally:
            stack.stop()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--tags", type=int, default=200)
    parser.add_argument("--http-batches", type=int, default=20)
    out = asyncio.run(main(parser.parse_args()))
    path = Path(__file__).parent / "results" / "assets_observations.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    json.dump(out, sys.stdout, indent=2)
    print()
