"""HTTP request path: Vigil against a bare FastAPI app and a hand-written FastAPI+asyncpg+redis-py app.

    .venv/bin/python bench/http.py [--label after] [--workers 1,2] [--duration 8] [--connections 32] [--rounds 3]

One run starts `make run`-equivalent embedded services (core/devstack.py), `vigil serve` (auth, logging
and metrics as shipped: a `write` key made through the API, log level INFO to a file), the bare app and the
hand-written app (bench/_http_apps.py) on the same PostgreSQL and Valkey, and drives each with
`wrk -t1 -cC -dDs` (Debian package `wrk`: `apt-get install -y wrk`). Ratios are Vigil req/s over the
comparison's req/s measured in the same run. Results (per label, so a "before" and an "after" sit side by
side) go to bench/results/http.json and bench/results/http.md. Loopback only, bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from common import ADMIN, ROOT, machine  # also puts src/ on sys.path

from vigil.core import migrations
from vigil.core.config import Settings
from vigil.core.devstack import DevStack, free_port

RESULTS = ROOT / "bench" / "results"
TOKEN = "Z" * 16  # replaced per request by a 16-digit counter: distinct event_uid and image bytes

DONE_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"socket_errors":%d,"non_2xx":%d,' ..
    '"p50_us":%d,"p99_us":%d}\n', summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
    e.status, latency:percentile(50), latency:percentile(99)))
end
"""


def lua_get(paths: list[str], headers: dict[str, str]) -> str:
    hdr = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
    items = ", ".join(json.dumps(p) for p in paths)
    return f"""{hdr}local paths = {{{items}}}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
""" + DONE_LUA


def lua_post_person(path: str, headers: dict[str, str], base: int) -> str:
    hdr = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
    return f"""{hdr}wrk.headers["Content-Type"] = "application/json"
local i = {base}
init = function(args) i = i + tonumber(args[1] or "0") end  -- the warm-up counts from elsewhere
request = function()
  i = i + 1
  return wrk.format("POST", "{path}", nil, string.format('{{"global_id": %d, "name": "bench %d"}}', i, i))
end
""" + DONE_LUA


def lua_post_pieces(path: str, headers: dict[str, str], pieces_dir: Path, count: int, content_type: str,
                    base: int) -> str:
    hdr = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
    return f"""{hdr}wrk.headers["Content-Type"] = "{content_type}"
local pieces = {{}}
for n = 0, {count - 1} do
  local f = io.open("{pieces_dir}/piece" .. n .. ".bin", "rb")
  pieces[#pieces + 1] = f:read("*a")
  f:close()
end
local i = {base}
init = function(args) i = i + tonumber(args[1] or "0") end  -- the warm-up counts from elsewhere
request = function()
  i = i + 1
  local id = string.format("%016d", i)
  return wrk.format("POST", "{path}", nil, table.concat(pieces, id))
end
""" + DONE_LUA


def jpeg_77k(seed: int) -> bytes:
    """A ~77 KB noise JPEG with a 16-byte COM segment holding TOKEN (so each request's bytes differ)."""
    import numpy as np
    from PIL import Image

    side = 150
    while True:
        pixels = np.random.default_rng(seed).integers(0, 256, (side, side * 4 // 3, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=85)
        if len(buf.getvalue()) >= 77_000:
            break
        side += 4
    raw = buf.getvalue()
    return raw[:2] + b"\xff\xfe\x00\x12" + TOKEN.encode() + raw[2:]


def multipart_pieces(out: Path, camera_id: str) -> tuple[int, str]:
    """Write the multipart body split at TOKEN into piece files; returns (piece count, content type)."""
    boundary = "vigilbench" + uuid.uuid4().hex
    event = {"event_uid": f"bench-{TOKEN}", "camera_id": camera_id, "plate": "BN12345", "confidence": 0.9,
             "captured_at": datetime.now(UTC).isoformat()}
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"event\"\r\n\r\n{json.dumps(event)}\r\n".encode()
        + f"--{boundary}\r\nContent-Disposition: form-data; name=\"frame\"; filename=\"frame.jpg\"\r\n"
          f"Content-Type: image/jpeg\r\n\r\n".encode() + jpeg_77k(1) + b"\r\n"
        + f"--{boundary}\r\nContent-Disposition: form-data; name=\"crop\"; filename=\"crop.jpg\"\r\n"
          f"Content-Type: image/jpeg\r\n\r\n".encode() + jpeg_77k(2) + b"\r\n"
        + f"--{boundary}--\r\n".encode()
    )
    pieces = body.split(TOKEN.encode())
    out.mkdir(parents=True, exist_ok=True)
    for n, piece in enumerate(pieces):
        (out / f"piece{n}.bin").write_bytes(piece)
    return len(pieces), f"multipart/form-data; boundary={boundary}"


class Wrk:
    def __init__(self, tmp: Path, duration: int, connections: int) -> None:
        self.tmp, self.duration, self.connections = tmp, duration, connections

    def run(self, url: str, script: str, name: str, *, warmup: bool = True) -> dict:
        path = self.tmp / (re.sub(r"[^A-Za-z0-9]+", "_", name) + ".lua")
        path.write_text(script)
        if warmup:
            subprocess.run(["wrk", "-t1", "-c8", "-d1s", "-s", str(path), url, "--", "500000000"],
                           capture_output=True, timeout=60)
        load = os.getloadavg()[0]
        out = subprocess.run(["wrk", "-t1", f"-c{self.connections}", f"-d{self.duration}s", "-s", str(path), url],
                             capture_output=True, text=True, timeout=self.duration + 60)
        line = next((x for x in out.stdout.splitlines() if x.startswith("WRKJSON ")), None)
        if line is None:
            raise RuntimeError(f"wrk gave no summary for {name}: {out.stdout}\n{out.stderr}")
        data = json.loads(line.removeprefix("WRKJSON "))
        data["rps"] = round(data["requests"] / (data["duration_us"] / 1e6), 1)
        data["p99_ms"] = round(data["p99_us"] / 1000, 1)
        data["p50_ms"] = round(data["p50_us"] / 1000, 1)
        data["load_before"] = round(load, 2)
        print(f"  {name:<34} {data['rps']:>9.1f} req/s  p99 {data['p99_ms']:>7.1f} ms  "
              f"non-2xx {data['non_2xx']}  errors {data['socket_errors']}", flush=True)
        return data


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def start_vigil(settings: Settings, tmp: Path, workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
           "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
           "REDPANDA_BROKERS": settings.redpanda_brokers, "VIGIL_QDRANT_PATH": str(settings.qdrant_path),
           "VIGIL_DATA_DIR": str(tmp / "app"), "PORT": str(port), "VIGIL_ADMIN_KEY": ADMIN,
           "VIGIL_WORKERS": str(workers)}
    env.pop("VIGIL_LOG_LEVEL", None)  # as shipped: INFO, one access line per request
    log = open(tmp / f"vigil-w{workers}.log", "ab")  # noqa: SIM115 - closed with the process
    argv = [sys.executable, "-m", "vigil.cli", "serve"]
    proc = subprocess.Popen(argv, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"vigil serve did not become ready (see {tmp}/vigil-w{workers}.log)")
        time.sleep(0.3)
    time.sleep(2)  # consumers join after /ready
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def seed_vigil(url: str, settings: Settings) -> dict:
    """A write key made through the API, 200 people, one camera, 50 open alerts; the directory cached."""
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=url, timeout=30) as client:
        r = client.post("/api/v1/auth/keys", json={"name": "bench", "scopes": ["write"]}, headers=admin)
        r.raise_for_status()
        key = r.json()["key"]
        auth = {"Authorization": f"Bearer {key}"}
        people = []
        for i in range(200):
            r = client.post("/api/v1/people", json={"global_id": 10_000 + i, "name": f"person {i}"}, headers=auth)
            r.raise_for_status()
            people.append(r.json()["id"])
        camera = client.post("/api/v1/cameras", json={"name": "bench cam", "rtsp_url": "rtsp://10.0.0.1/s", "fps": 10,
                                                      "width": 1920, "height": 1080},
                             headers=auth)
        camera.raise_for_status()
    asyncio.run(_raise_alerts(settings, 50))
    with httpx.Client(base_url=url, timeout=30) as client:
        directory = client.get("/api/v1/people/directory", headers=auth)
        directory.raise_for_status()
        alerts = client.get("/api/v1/alerts?limit=50", headers=auth).json()
        assert len(alerts["items"]) == 50, alerts
    return {"key": key, "people": people, "camera_id": camera.json()["id"], "directory": directory.content}


async def _raise_alerts(settings: Settings, n: int) -> None:
    from redis.asyncio import Redis

    from vigil.alerts import service as alerts
    from vigil.core.db import create_engine, create_sessionmaker, session_scope

    engine = create_engine(settings.database_url or "")
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            for i in range(n):
                await alerts.raise_alert(session, source="bench", kind="bench", severity="warning",
                                         title=f"bench alert {i}", subject=f"s{i}", data={"i": i, "zone": "z1"})
    finally:
        await engine.dispose()
    redis = Redis.from_url(settings.redis_url or "")
    await redis.aclose()


class ComparisonApps:
    """The bare and hand-written apps, running for the whole bench on the same services."""

    def __init__(self, tmp: Path, settings: Settings, seeded: dict) -> None:
        self.tmp, self.seeded = tmp, seeded
        bare_port, hand_port = free_port(), free_port()
        apps = ROOT / "bench" / "_http_apps.py"
        self.bare = subprocess.Popen([sys.executable, str(apps), "bare", str(bare_port)])
        self.hand = subprocess.Popen([sys.executable, str(apps), "hand", str(hand_port), settings.database_url or "",
                                      settings.redis_url or "", str(tmp / "hand-blobs")])
        import redis

        redis.Redis.from_url(settings.redis_url or "").set("bench:directory", seeded["directory"])
        self.bare_url, self.hand_url = f"http://127.0.0.1:{bare_port}", f"http://127.0.0.1:{hand_port}"
        wait_http(f"{self.bare_url}/hello", self.bare)
        wait_http(f"{self.hand_url}/directory", self.hand)
        self.count, self.ctype = multipart_pieces(tmp / "hand-pieces", seeded["camera_id"])
        self.runs = 0

    def measure(self, wrk: Wrk, which: str) -> dict:
        self.runs += 1
        if which == "bare_hello":
            return wrk.run(self.bare_url, lua_get(["/hello"], {}), "bare hello")
        if which == "hand_person":
            return wrk.run(self.hand_url, lua_get([f"/people/{p}" for p in self.seeded["people"]], {}),
                           "hand-written asyncpg read")
        if which == "hand_redis":
            return wrk.run(self.hand_url, lua_get(["/directory"], {}), "hand-written redis GET")
        return wrk.run(self.hand_url, lua_post_pieces("/plates", {}, self.tmp / "hand-pieces", self.count,
                                                       self.ctype, 10**9 * self.runs), "hand-written multipart")

    def stop(self) -> None:
        stop(self.bare)
        stop(self.hand)


ROWS = [
    ("GET /liveness", "bare_hello", "bare hello"),
    ("GET /api/v1/people/{id}", "hand_person", "hand-written asyncpg read"),
    ("GET /api/v1/people/directory (cached)", "hand_redis", "hand-written Redis GET"),
    ("GET /api/v1/alerts?limit=50 (50 alerts)", "hand_person", "hand-written person read"),
    ("POST /api/v1/people", "hand_person", "hand-written person read"),
    ("POST /api/v1/plates/events (2 x ~77 KB JPEG)", "hand_plates", "hand-written multipart"),
]


def vigil_rows(wrk: Wrk, url: str, tmp: Path, seeded: dict, workers: int, base: int,
               apps: ComparisonApps) -> dict:
    """Each Vigil row right after its comparison, so both see about the same machine load."""
    auth = {"Authorization": f"Bearer {seeded['key']}"}
    count, ctype = multipart_pieces(tmp / f"vigil-pieces-{workers}", seeded["camera_id"])
    # Directory before the writes: POST /people invalidates it.
    scripts = [
        lua_get(["/liveness"], {}),
        lua_get([f"/api/v1/people/{p}" for p in seeded["people"]], auth),
        lua_get(["/api/v1/people/directory"], auth),
        lua_get(["/api/v1/alerts?limit=50"], auth),
        lua_post_person("/api/v1/people", auth, base),
        lua_post_pieces("/api/v1/plates/events", auth, tmp / f"vigil-pieces-{workers}", count, ctype, base),
    ]
    out = {}
    for (name, ref, _), script in zip(ROWS, scripts, strict=True):
        comparison = apps.measure(wrk, ref)
        out[name] = wrk.run(url, script, f"vigil w{workers} {name[:24]}", warmup=True)
        out[name]["comparison"] = comparison
    return out


def median_round(rounds: list[dict]) -> dict:
    """The rows of several rounds as one: per row the round with the median ratio (its req/s, p99 and
    comparison as measured together), and every round's ratio under `rounds`, so the spread is on record."""
    out = {}
    for name, _ref, _ in ROWS:
        ranked = sorted((r[name] for r in rounds), key=lambda row: row["rps"] / row["comparison"]["rps"])
        out[name] = {**ranked[(len(ranked) - 1) // 2],
                     "rounds": [{"rps": r[name]["rps"], "comparison_rps": r[name]["comparison"]["rps"],
                                 "ratio": round(r[name]["rps"] / r[name]["comparison"]["rps"], 3)} for r in rounds]}
    return out


def forget_bench_people(url: str, settings: Settings, key: str) -> int:
    """Delete the people the POST row made, so the next worker count reads the same 200-person directory as
    the first (and as the hand-written app's Redis GET). Without this the second run served a directory
    about 30x bigger. One write through the API afterwards invalidates the cached directory."""
    import asyncpg

    async def delete() -> int:
        conn = await asyncpg.connect((settings.database_url or "").replace("postgresql+asyncpg://", "postgresql://"))
        try:
            status = await conn.execute("DELETE FROM people WHERE global_id >= 1000000000")
        finally:
            await conn.close()
        return int(status.split()[-1])

    deleted = asyncio.run(delete())
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, timeout=30) as client:
        made = client.post("/api/v1/people", json={"global_id": 999_999_999, "name": "invalidate"}, headers=auth)
        made.raise_for_status()
        client.delete(f"/api/v1/people/{made.json()['id']}", headers=auth).raise_for_status()
        size = len(client.get("/api/v1/people/directory", headers=auth).content)
    print(f"  (deleted the {deleted} people the POST row made; the directory is {size:,} bytes again)", flush=True)
    return deleted


def failed(row: dict) -> int:
    return row["non_2xx"] + row["socket_errors"]


def render_md(data: dict) -> str:
    lines = ["# HTTP request path: Vigil vs comparison apps (bench/http.py)", ""]
    for label, run in data["runs"].items():
        lines += [f"## {label}", "", f"{run['machine']}; wrk -t1 -c{run['connections']} -d{run['duration_s']}s", ""]
        for workers, rows in run["vigil"].items():
            lines += [f"### Vigil with {workers} worker(s)", "",
                      "| request | Vigil req/s | p99 ms | failed | comparison | req/s | p99 ms | failed | ratio |",
                      "|---|---|---|---|---|---|---|---|---|"]
            for name, _ref, ref_name in ROWS:
                v = rows[name]
                c = v["comparison"]
                ratio = f"{v['rps'] / c['rps']:.2f}"
                if len(v.get("rounds", ())) > 1:
                    ratios = [r["ratio"] for r in v["rounds"]]
                    ratio += f" (median of {len(ratios)}: {min(ratios):.2f}-{max(ratios):.2f})"
                lines.append(f"| `{name}` | {v['rps']:,.0f} | {v['p99_ms']} | {failed(v)} | {ref_name} | "
                             f"{c['rps']:,.0f} | {c['p99_ms']} | {failed(c)} | {ratio} |")
            lines.append("")
        lines += ["failed: non-2xx answers plus wrk socket errors (mostly its 2 s timeout); req/s counts only "
                  "completed requests. Load averages (1 min) before each row are in http.json. With several "
                  "rounds, a row shows the round with the median ratio, and the range of all rounds.", ""]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default="latest")
    parser.add_argument("--workers", default=f"1,{os.cpu_count() or 1}")
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every row this many times, each Vigil run right after its comparison, and "
                             "report the median ratio with the range (a noisy machine)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench/http.py needs wrk, which is not installed. On Debian/Ubuntu: sudo apt-get install -y wrk",
              file=sys.stderr)
        return 2
    workers = sorted({int(w) for w in args.workers.split(",") if w.strip()})
    wrk_ = None
    with tempfile.TemporaryDirectory(prefix="vigil-bench-http-") as tmp_name:
        tmp = Path(tmp_name)
        wrk_ = Wrk(tmp, args.duration, args.connections)
        stack = DevStack(tmp / "stack")
        settings = stack.start(Settings(_env_file=None))
        try:
            migrations.upgrade(settings.database_url or "")
            run: dict = {"machine": machine(), "connections": args.connections, "duration_s": args.duration,
                         "cpu_count": os.cpu_count(), "rounds": args.rounds, "vigil": {}}
            proc, url = start_vigil(settings, tmp, workers[0])
            try:
                seeded = seed_vigil(url, settings)
                apps = ComparisonApps(tmp, settings, seeded)
                try:
                    for n, w in enumerate(workers):
                        if n:
                            forget_bench_people(url, settings, seeded["key"])
                            stop(proc)
                            proc, url = start_vigil(settings, tmp, w)
                        rounds = []
                        for r in range(args.rounds):
                            if r:  # the same 200-person directory in every round
                                forget_bench_people(url, settings, seeded["key"])
                            print(f"vigil, {w} worker(s), round {r + 1} of {args.rounds}, each row after its "
                                  "comparison:", flush=True)
                            # Global ids and plates of each round's writes apart (10**7 per round).
                            rounds.append(vigil_rows(wrk_, url, tmp, seeded, w, 10**9 * (n + 1) + 10**7 * r, apps))
                        run["vigil"][str(w)] = rounds[0] if args.rounds == 1 else median_round(rounds)
                finally:
                    apps.stop()
            finally:
                stop(proc)
            run["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        finally:
            stack.stop()
    path = RESULTS / "http.json"
    data = json.loads(path.read_text()) if path.exists() else {"runs": {}}
    data["runs"][args.label] = run
    path.write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / "http.md").write_text(render_md(data))
    print(render_md({"runs": {args.label: run}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
