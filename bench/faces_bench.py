"""Faces benchmark: detection + encoding time per photo, and search latency / recall on pgvector.

    .venv/bin/python bench/faces_bench.py [--vectors 100000] [--queries 200] [--out bench/results/faces.json]

1. Model: the bundled astronaut photo resized to 640 px and 2000 px, run through
   `encoder.analyse` in this process (one thread), with the default settings (detection on a copy
   downscaled to 1024 px, upsample 1) and with detection at full size.
2. Search: N synthetic 128-d vectors shaped like dlib face vectors (identities ~ N(0, 0.09) per
   dimension, each with 10 faces at ~0.35 L2 from their identity), loaded into a throwaway embedded
   PostgreSQL (or DATABASE_URL) with the app's migrations and HNSW index. Queries are fresh faces of
   stored identities. Reported: median / p95 latency of the exact scan (one event's 10k faces, and the
   whole table) and of the HNSW search at several ef_search, with recall@10 against the exact answer.
   The statements are the service's own (`service.nearest_stmt`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from vigil.faces import encoder  # noqa: E402

FACES_PER_IDENTITY = 10
EVENT_SIZE = 10_000  # faces per synthetic event


def ms(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    p95 = values[max(0, math.ceil(0.95 * len(values)) - 1)]  # nearest rank
    return {"median_ms": round(statistics.median(values) * 1000, 2), "p95_ms": round(p95 * 1000, 2)}


def bench_model(repeats: int) -> dict:
    import io

    from PIL import Image
    from skimage import data

    astronaut = Image.fromarray(data.astronaut())
    out: dict[str, dict] = {}
    encoder.get_encoder()  # model load is not part of the per-image time
    for side in (640, 2000):
        buf = io.BytesIO()
        astronaut.resize((side, side), Image.Resampling.LANCZOS).save(buf, "JPEG", quality=90)
        jpeg = buf.getvalue()
        variants = [("default (detect at <=1024 px)", 1024)] + ([("detect at full size", side)] if side > 1024 else [])
        for label, max_side in variants:
            opts = encoder.AnalyseOptions(detect_max_side=max_side, upsample=1)
            times, faces = [], 0
            for _ in range(repeats):
                start = time.perf_counter()
                result = encoder.analyse(jpeg, opts)
                times.append(time.perf_counter() - start)
                faces = len(result.faces)
            out[f"{side}px, {label}"] = {**ms(times), "faces": faces, "runs": repeats}
            print(f"  {side:>4} px  {label:<32} {out[f'{side}px, {label}']}")
    return out


def synthetic(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    identities = rng.normal(0.0, 0.3, size=(n // FACES_PER_IDENTITY + 1, 128)).astype(np.float32)
    owner = np.arange(n) // FACES_PER_IDENTITY
    noise = rng.normal(0.0, 0.35 / np.sqrt(128), size=(n, 128)).astype(np.float32)
    return identities[owner] + noise, identities


async def bench_search(database_url: str, n: int, queries: int, seed: int = 7) -> dict:
    import asyncpg
    from pgvector.asyncpg import register_vector
    from sqlalchemy import text

    from vigil.core.db import create_engine
    from vigil.core.migrations import upgrade
    from vigil.faces import service

    rng = np.random.default_rng(seed)
    vectors, identities = synthetic(n, rng)
    await asyncio.to_thread(upgrade, database_url)
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    await register_vector(conn)
    n_events = max(1, n // EVENT_SIZE)
    events = [uuid.uuid4() for _ in range(n_events)]
    images = [uuid.uuid4() for _ in range(n_events)]
    await conn.execute("TRUNCATE face_events CASCADE")
    for i, (event_id, image_id) in enumerate(zip(events, images, strict=True)):
        await conn.execute("INSERT INTO face_events (id, code, name, running) VALUES ($1, $2, $2, true)",
                           event_id, f"bench-{i}")
        await conn.execute(
            "INSERT INTO face_images (id, event_id, sha256, blob_key, content_type, size_bytes, width, height, "
            "created_at) VALUES ($1, $2, $3, 'none', 'image/jpeg', 0, 1, 1, now())", image_id, event_id, f"{i:064d}")
    await conn.execute("DROP INDEX ix_faces_embedding_hnsw")  # build once after the load: much faster
    start = time.perf_counter()
    now = datetime.now(UTC)
    records = [(uuid.uuid4(), images[i // EVENT_SIZE % n_events], events[i // EVENT_SIZE % n_events], i, 0, 0, 1, 1,
                1.0, "dlib_resnet_v1", "synthetic", vectors[i], now) for i in range(n)]
    await conn.copy_records_to_table(
        "faces", records=records,
        columns=["id", "image_id", "event_id", "seq", "x", "y", "w", "h", "det_score", "model", "alignment",
                 "embedding", "created_at"])
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    await conn.execute("SET maintenance_work_mem = '512MB'")
    await conn.execute("CREATE INDEX ix_faces_embedding_hnsw ON faces USING hnsw (embedding vector_l2_ops) "
                       "WITH (m = 16, ef_construction = 64)")
    index_s = time.perf_counter() - start
    await conn.execute("ANALYZE faces")
    await conn.close()
    print(f"  loaded {n} vectors in {load_s:.1f}s, HNSW index built in {index_s:.1f}s")

    # Queries: fresh faces of stored identities (their 10 stored faces are the true neighbours).
    who = rng.integers(0, n // FACES_PER_IDENTITY, size=queries)
    q = identities[who] + rng.normal(0.0, 0.35 / np.sqrt(128), size=(queries, 128)).astype(np.float32)
    engine = create_engine(database_url, pool_size=2, max_overflow=0)
    result: dict = {"vectors": n, "queries": queries, "load_s": round(load_s, 1), "hnsw_build_s": round(index_s, 1)}
    try:
        async with engine.connect() as c:
            async def run(event_id, ef: int | None) -> tuple[list[float], list[list[uuid.UUID]], bool]:
                times, answers, used_index = [], [], False
                if ef is not None:
                    await c.execute(text(f"SET hnsw.ef_search = {ef}"))
                    plan = await c.execute(text("EXPLAIN " + str(service.nearest_stmt(
                        q[0].tolist(), model="dlib_resnet_v1", event_id=event_id, top_k=10
                    ).compile(dialect=c.dialect, compile_kwargs={"literal_binds": True}))))
                    used_index = "ix_faces_embedding_hnsw" in "\n".join(r[0] for r in plan)
                for vec in q:
                    stmt = service.nearest_stmt(vec.tolist(), model="dlib_resnet_v1", event_id=event_id, top_k=10)
                    start = time.perf_counter()
                    rows = (await c.execute(stmt)).all()
                    times.append(time.perf_counter() - start)
                    answers.append([r.id for r in rows])
                return times, answers, used_index

            # Exact over the whole table: the function form never touches the index.
            await c.execute(text("SET max_parallel_workers_per_gather = 0"))
            exact_all: list[list[uuid.UUID]] = []
            times = []
            for vec in q:
                start = time.perf_counter()
                rows = (await c.execute(text(
                    "SELECT id FROM faces WHERE model = 'dlib_resnet_v1' "
                    "ORDER BY l2_distance(embedding, CAST(:qv AS vector)) LIMIT 10"), {"qv": str(vec.tolist())})).all()
                times.append(time.perf_counter() - start)
                exact_all.append([r.id for r in rows])
            result["exact_all_events"] = ms(times)
            print(f"  exact scan, all {n} faces:           {result['exact_all_events']}")
            event_times, _, _ = await run(events[0], None)
            result["exact_one_event"] = {**ms(event_times), "event_faces": min(EVENT_SIZE, n)}
            print(f"  exact scan, one event of {min(EVENT_SIZE, n)} faces: {result['exact_one_event']}")
            result["hnsw"] = {}
            for ef in (40, 100, 200, 400):
                times, answers, used = await run(None, ef)
                recall = statistics.mean(len(set(a) & set(e)) / len(e) for a, e in zip(answers, exact_all, strict=True))
                result["hnsw"][f"ef_search={ef}"] = {**ms(times), "recall_at_10": round(recall, 4), "index_used": used}
                print(f"  HNSW ef_search={ef:<4}                 {result['hnsw'][f'ef_search={ef}']}")
    finally:
        await engine.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-model", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "faces.json")
    args = parser.parse_args()
    report: dict = {"cpus": os.cpu_count()}
    if not args.skip_model:
        print("detection + encoding per photo (one process, one thread):")
        report["model"] = bench_model(args.repeats)
    if not args.skip_search:
        print(f"search over {args.vectors} synthetic vectors, {args.queries} queries, top 10:")
        url = os.environ.get("DATABASE_URL")
        if url:
            report["search"] = asyncio.run(bench_search(url, args.vectors, args.queries))
        else:
            from vigil.core.devstack import start_postgres

            with tempfile.TemporaryDirectory(prefix="vigil-faces-bench-") as tmp:
                proc, url = start_postgres(Path(tmp), fast=True)
                try:
                    report["search"] = asyncio.run(bench_search(url, args.vectors, args.queries))
                finally:
                    proc.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
