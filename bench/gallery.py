"""ReID gallery: identify at N vectors in pgvector (HNSW) and in Qdrant (nothing asserted; numbers saved).

    .venv/bin/python bench/gallery.py [--vectors 100000] [--dim 512] [--queries 200]

Both backends are driven through Vigil's own gallery classes (people/gallery.py), as the identify
route drives them: `PgGallery` on the embedded PostgreSQL + pgvector, and `Gallery` on Qdrant.
Qdrant server mode needs the qdrant binary, which no PyPI wheel ships (qdrant-client has none,
and qdrant-edge-py is an embedded engine, not the server) and nothing else can be fetched here, so
Qdrant is measured in local mode, the mode `make run` uses; the README says what that means.

Data: `--vectors` unit vectors in clusters of `--per-person` (one person each: centroid + noise);
queries are new noisy views of random people. Recall@top_k is per person against exact search.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from common import machine, pct
from sqlalchemy import text

from vigil.core.config import Settings
from vigil.core.db import create_engine, create_sessionmaker
from vigil.core.devstack import DevStack
from vigil.core.migrations import upgrade
from vigil.people.gallery import Gallery, PgGallery

ROOT = Path(__file__).resolve().parents[1]


def make_data(n: int, dim: int, per_person: int, queries: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    people = n // per_person
    centroids = rng.normal(size=(people, dim)).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    owners = np.repeat(np.arange(people), per_person)
    vectors = centroids[owners] + rng.normal(scale=0.6 / np.sqrt(dim), size=(people * per_person, dim))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    q_owner = rng.integers(0, people, size=queries)
    q = centroids[q_owner] + rng.normal(scale=0.6 / np.sqrt(dim), size=(queries, dim))
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    return people, owners, vectors, q


def exact_people(vectors, owners, q, top_k):
    """Per query: the top_k people by their best vector (brute force)."""
    out = []
    for row in q:
        scores = vectors @ row
        best: dict[int, float] = {}
        for i in np.argsort(-scores):
            best.setdefault(int(owners[i]), float(scores[i]))
            if len(best) >= top_k:
                break
        out.append(list(best))
    return out


async def time_queries(gallery, q, top_k, person_index):
    lat, found = [], []
    for row in q[:5]:  # warm-up
        await gallery.search(row.tolist(), top_k=top_k, min_score=0.0)
    for row in q:
        t = time.perf_counter()
        hits = await gallery.search(row.tolist(), top_k=top_k, min_score=0.0)
        lat.append((time.perf_counter() - t) * 1000)
        found.append([person_index[pid] for pid, _ in hits])
    return lat, found


def recall(found, truth):
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def summary(lat):
    return {"p50_ms": round(pct(lat, 50), 2), "p95_ms": round(pct(lat, 95), 2), "p99_ms": round(pct(lat, 99), 2),
            "mean_ms": round(float(np.mean(lat)), 2)}


async def bench_pgvector(database_url, people, owners, vectors, q, truth, top_k, ef_values):
    engine = create_engine(database_url, pool_size=4)
    sm = create_sessionmaker(engine)
    ids = [uuid.uuid4() for _ in range(people)]
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE reid_galleries, reid_embeddings, people CASCADE"))
        await conn.execute(text("INSERT INTO people (id, global_id, name, created_at, updated_at) "
                                "SELECT unnest(CAST(:ids AS uuid[])), generate_series(1, :n), 'p', now(), now()"),
                           {"ids": [str(i) for i in ids], "n": people})
    gallery = PgGallery(sm, collection="bench")
    dim = vectors.shape[1]
    # Bulk load, then build the HNSW index once (what a migration of an existing gallery would do;
    # one insert per person through HNSW takes far longer and is not what identify's numbers depend on).
    await gallery._ensure(dim)
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP INDEX ix_reid_embeddings_hnsw_{dim}"))
    t = time.perf_counter()
    per = len(owners) // people
    owner_ids = [str(ids[p]) for p in range(people) for _ in range(per)]
    literals = ["[" + ",".join(f"{x:.6f}" for x in row) + "]" for row in vectors]
    sql = text("INSERT INTO reid_embeddings (id, collection, person_id, global_id, model, dim, embedding, created_at) "
               "SELECT gen_random_uuid(), 'bench', p, 0, 'bench', :dim, CAST(v AS vector), now() "
               "FROM unnest(CAST(:pids AS uuid[]), CAST(:vecs AS text[])) AS t(p, v)")
    for start in range(0, len(literals), 5000):
        async with engine.begin() as conn:
            await conn.execute(sql, {"dim": dim, "pids": owner_ids[start:start + 5000],
                                     "vecs": literals[start:start + 5000]})
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
        await conn.execute(text(
            f"CREATE INDEX ix_reid_embeddings_hnsw_{dim} ON reid_embeddings "
            f"USING hnsw ((embedding::vector({dim})) vector_cosine_ops) WHERE dim = {dim}"))
        await conn.execute(text("ANALYZE reid_embeddings"))
    build_s = time.perf_counter() - t
    print(f"pgvector: loaded in {load_s:.1f}s, index built in {build_s:.1f}s", flush=True)
    index = {str(i): k for k, i in enumerate(ids)}
    results = {"load_s": round(load_s, 1), "index_build_s": round(build_s, 1), "by_ef_search": {}}
    for ef in ef_values:
        gallery.ef_search = ef
        lat, found = await time_queries(gallery, q, top_k, index)
        results["by_ef_search"][str(ef)] = {**summary(lat), f"recall_at_{top_k}": round(recall(found, truth), 4)}
        print(f"pgvector ef_search={ef}: {results['by_ef_search'][str(ef)]}", flush=True)
    async with engine.connect() as conn:
        results["index_mb"] = round(await conn.scalar(text(
            f"SELECT pg_relation_size('ix_reid_embeddings_hnsw_{vectors.shape[1]}')")) / 2**20, 1)
    await engine.dispose()
    return results


async def bench_qdrant_local(path, people, owners, vectors, q, truth, top_k):
    from qdrant_client import AsyncQdrantClient

    # In memory: the same in-process search as local mode under the data dir (numpy over every
    # vector); only the load differs (no SQLite persistence), which is not what is measured here.
    client = AsyncQdrantClient(location=":memory:")
    gallery = Gallery(client, collection="bench", local=True)
    from qdrant_client import models

    ids = [uuid.uuid4() for _ in range(people)]
    per = len(owners) // people
    t = time.perf_counter()
    await gallery._ensure(vectors.shape[1])
    points = [models.PointStruct(id=str(uuid.uuid4()), vector=vectors[p * per + j].tolist(),
                                 payload={"person_id": str(ids[p]), "global_id": p + 1})
              for p in range(people) for j in range(per)]
    for start in range(0, len(points), 5000):  # bulk upserts, as a migration would load it
        chunk = points[start:start + 5000]
        await gallery._call(lambda chunk=chunk: client.upsert("bench", points=chunk, wait=True))
    load_s = time.perf_counter() - t
    index = {str(i): k for k, i in enumerate(ids)}
    lat, found = await time_queries(gallery, q, top_k, index)
    await client.close()
    out = {"load_s": round(load_s, 1), **summary(lat), f"recall_at_{top_k}": round(recall(found, truth), 4)}
    print(f"qdrant local: {out}", flush=True)
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vectors", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--per-person", type=int, default=10)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--skip-qdrant", action="store_true")
    args = ap.parse_args()
    started = machine()
    people, owners, vectors, q = make_data(args.vectors, args.dim, args.per_person, args.queries)
    truth = exact_people(vectors, owners, q, args.top_k)
    with tempfile.TemporaryDirectory(prefix="vigil-bench-gallery-") as tmp:
        stack = DevStack(Path(tmp) / "stack", fast=True)
        settings = stack.start(Settings(_env_file=None))
        try:
            upgrade(settings.database_url or "")
            pg = await bench_pgvector(settings.database_url, people, owners, vectors, q, truth, args.top_k,
                                      [40, 100, 200])
            qd = None if args.skip_qdrant else await bench_qdrant_local(
                Path(tmp) / "qdrant", people, owners, vectors, q, truth, args.top_k)
        finally:
            stack.stop()
    result = {
        "what": "POST /api/v1/people/identify's gallery search (Vigil's gallery classes), top_k people, "
                "one best vector each",
        "machine": started,
        "vectors": args.vectors, "dim": args.dim, "people": people, "queries": args.queries, "top_k": args.top_k,
        "pgvector_hnsw": pg,
        "qdrant_local_mode": qd,
        "qdrant_local_mode_note": "qdrant-client local mode, in memory (same search path as the data-dir local mode)",
        "qdrant_server_mode": "not measured: no PyPI wheel ships the Qdrant server binary, and nothing else can "
                              "be fetched on this machine (checked: qdrant-client, qdrant-edge-py is an embedded "
                              "engine); see README 'ReID gallery'",
    }
    out = ROOT / "bench" / "results" / "gallery.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    asyncio.run(main())
