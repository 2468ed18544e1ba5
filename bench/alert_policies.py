"""What alert policies cost: evaluation passes with 10k open alerts and 100 policies, and raise_alert itself.

    .venv/bin/python bench/alert_policies.py [--alerts 10000] [--policies 100] [--raises 500]

On the embedded PostgreSQL (fresh, migrated):
1. 10k open alerts over six sources, 200 zones and 50 cameras (bulk insert), then 100 policies created
   through the service (each attaches itself to the active alerts it matches, as the API does).
2. Passes of `policies.evaluate` (the evaluator's unit of work), each timed and with its SQL statements
   counted by a `before_cursor_execute` listener:
   - idle: nothing due (the steady state between steps/reminders);
   - due: every state made due (escalation step + reminder), drained in batches of 1,000;
   - quiet: every alert's last sighting pushed back, so quiet resolve closes them, in batches.
3. raise_alert (new alerts) with 0 and with 100 policies: ms and statements per call.

Writes bench/results/alert_policies.json and prints it. Compare numbers within one run only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from datetime import timedelta
from pathlib import Path

from sqlalchemy import event, insert, text, update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from common import machine  # noqa: E402

from vigil.alerts import policies, service  # noqa: E402
from vigil.alerts.models import Alert, AlertPolicyState  # noqa: E402
from vigil.alerts.schemas import PolicyCreate  # noqa: E402
from vigil.core.config import Settings  # noqa: E402
from vigil.core.db import create_engine, create_sessionmaker, session_scope, utcnow  # noqa: E402
from vigil.core.devstack import DevStack  # noqa: E402
from vigil.core.logging import setup_logging  # noqa: E402
from vigil.core.migrations import upgrade  # noqa: E402
from vigil.exporters.models import Exporter  # noqa: E402

warnings.filterwarnings("ignore", module="platformdirs")
SOURCES = ("reid", "plate", "geofence", "asset", "scenario", "exporter")
KINDS = ("intrusion", "loitering", "watchlist_hit", "geofence_enter", "battery_low", "scenario_failed")


class Counter:
    def __init__(self, engine) -> None:
        self.n = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, *args) -> None:
        self.n += 1


async def timed(factory, counter: Counter, fn) -> tuple[float, int, object]:
    before = counter.n
    started = time.perf_counter()
    async with session_scope(factory) as session:
        result = await fn(session)
    return (time.perf_counter() - started) * 1000, counter.n - before, result


def policy_body(i: int, exporter_ids: list[uuid.UUID]) -> PolicyCreate:
    rng = random.Random(i)
    match: dict = {"source": SOURCES[i % len(SOURCES)]}
    if i % 3 == 0:
        match["zone_id"] = f"ZONE_{rng.randrange(200):03d}"
    if i % 4 == 1:
        match["kind"] = KINDS[i % len(KINDS)]
    if i % 5 == 2:
        match["subject"] = f"subject-{rng.randrange(10)}*"
    body: dict = {
        "name": f"policy {i:03d}",
        "match": match,
        "notify": [str(exporter_ids[i % len(exporter_ids)])],
    }
    if i % 2 == 0:
        body["quiet_resolve_s"] = 600 + i
    if i % 3 != 2:
        body["remind_every_s"] = 300
    if i % 2 == 1:
        body["escalate"] = [{"after_s": 900, "severity": "critical"}, {"after_s": 3600}]
    if i % 10 == 0:
        body["schedule"] = {
            "tz": "Europe/Paris",
            "days": {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        }
    return PolicyCreate.model_validate(body)


async def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="vigil-bench-policies-") as tmp:
        stack = DevStack(Path(tmp) / "stack", fast=True)
        settings = stack.start(Settings(_env_file=None))
        try:
            upgrade(settings.database_url or "")
            return await measure(settings, args)
        finally:
            stack.stop()


async def measure(settings: Settings, args: argparse.Namespace) -> dict:
    engine = create_engine(settings.database_url or "")
    factory = create_sessionmaker(engine)
    counter = Counter(engine)
    out: dict = {"machine": machine(), "alerts": args.alerts, "policies": args.policies}
    now = utcnow()
    # raise_alert with no policy at all (the cost of the lifecycle hooks alone).
    out["raise_alert_no_policies"] = await raises(factory, counter, args.raises, prefix="np")

    async with session_scope(factory) as session:
        exporter_ids = [uuid.uuid4() for _ in range(5)]
        await session.execute(
            insert(Exporter),
            [
                {
                    "id": e,
                    "name": f"channel {n}",
                    "kind": "webhook",
                    "config": {"url": "http://127.0.0.1:9/x"},
                    "event_types": [],
                    "enabled": True,
                }
                for n, e in enumerate(exporter_ids)
            ],
        )
        rng = random.Random(7)
        rows = []
        for n in range(args.alerts):
            source = SOURCES[n % len(SOURCES)]
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "source": source,
                    "kind": KINDS[rng.randrange(len(KINDS))],
                    "subject": f"subject-{n}",
                    "severity": rng.choice(("info", "warning", "critical")),
                    "status": "open",
                    "title": f"bench alert {n}",
                    "count": 1,
                    "last_seen_at": now,
                    "created_at": now,
                    "updated_at": now,
                    "data": {
                        "zone_id": f"ZONE_{rng.randrange(200):03d}",
                        "camera_id": f"cam-{rng.randrange(50)}",
                    },
                }
            )
        for start in range(0, len(rows), 2000):
            await session.execute(insert(Alert), rows[start : start + 2000])
    started = time.perf_counter()
    for i in range(args.policies):
        async with session_scope(factory) as session:
            await policies.create_policy(session, policy_in=policy_body(i, exporter_ids))
    out["create_policies_s"] = round(time.perf_counter() - started, 2)
    async with factory() as session:
        out["policy_states"] = await session.scalar(text("SELECT count(*) FROM alert_policy_states"))
        out["alerts_with_a_policy"] = await session.scalar(
            text("SELECT count(DISTINCT alert_id) FROM alert_policy_states")
        )
    # The first pass after creating policies re-reads every attached state (they start due "now").
    out["first_pass_after_create"] = await drain(factory, counter, args.batch, now=utcnow())

    idle = [
        await timed(factory, counter, lambda s: policies.evaluate(s, batch=args.batch)) for _ in range(20)
    ]
    out["idle_pass"] = {
        "ms_median": round(statistics.median(t for t, _, _ in idle), 2),
        "ms_max": round(max(t for t, _, _ in idle), 2),
        "queries": sorted({q for _, q, _ in idle}),
    }

    # Everything due: alerts 2 hours old (both steps and a reminder due).
    if not args.skip_due:
        async with session_scope(factory) as session:
            await session.execute(update(Alert).values(created_at=now - timedelta(hours=2)))
            await session.execute(
                update(AlertPolicyState).values(
                    next_due_at=now - timedelta(seconds=1), notified_at=now - timedelta(hours=2)
                )
            )
        out["all_due"] = await drain(factory, counter, args.batch, now=now)

    # Every alert quiet for 2 hours: quiet resolve closes the ones whose policies have quiet_resolve_s.
    async with session_scope(factory) as session:
        await session.execute(update(Alert).values(last_seen_at=now - timedelta(hours=2)))
    out["all_quiet"] = await drain(factory, counter, args.batch, now=now)
    async with factory() as session:
        out["resolved_by_quiet"] = await session.scalar(
            text("SELECT count(*) FROM alerts WHERE resolved_by LIKE 'policy:%'")
        )
        out["deliveries_queued"] = await session.scalar(text("SELECT count(*) FROM exporter_deliveries"))

    out["raise_alert_with_policies"] = await raises(factory, counter, args.raises, prefix="wp")
    await engine.dispose()
    return out


async def drain(factory, counter: Counter, batch: int, *, now) -> dict:
    """Passes until one finds nothing to do; per-pass time and statement counts."""
    passes = []
    for _ in range(100):
        # A fixed clock: the bench's own duration must not make more alerts due or quiet.
        ms, queries, counts = await timed(
            factory, counter, lambda s: policies.evaluate(s, batch=batch, now=now)
        )
        passes.append({"ms": round(ms, 1), "queries": queries, **(counts or {})})
        if not counts or not (counts.get("due") or counts.get("resolved")):
            break
    busy = [p for p in passes if p.get("due") or p.get("resolved")]
    return {
        "passes": passes,
        "busy_passes": len(busy),
        "ms_per_busy_pass_median": round(statistics.median(p["ms"] for p in busy), 1) if busy else 0,
        "queries_per_busy_pass_max": max((p["queries"] for p in busy), default=0),
    }


async def raises(factory, counter: Counter, n: int, *, prefix: str) -> dict:
    times, queries = [], []
    for i in range(n):
        ms, q, _ = await timed(
            factory,
            counter,
            lambda s, i=i: service.raise_alert(
                s,
                source=SOURCES[i % len(SOURCES)],
                kind="intrusion",
                severity="warning",
                title="bench",
                subject=f"{prefix}-{i}",
                data={"zone_id": f"ZONE_{i % 200:03d}", "camera_id": f"cam-{i % 50}"},
            ),
        )
        times.append(ms)
        queries.append(q)
    return {
        "calls": n,
        "ms_median": round(statistics.median(times), 2),
        "ms_p95": round(sorted(times)[int(0.95 * (n - 1))], 2),
        "queries_median": statistics.median(queries),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--policies", type=int, default=100)
    parser.add_argument("--raises", type=int, default=300)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--skip-due", action="store_true", help="skip the (long) all-due phase")
    parser.add_argument("--out", default="alert_policies.json")
    args = parser.parse_args()
    setup_logging("WARNING")
    result = asyncio.run(run(args))
    path = ROOT / "bench" / "results" / args.out
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
