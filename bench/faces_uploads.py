"""Uploads must not starve reads: N concurrent face uploads (1024 px photos) while a dashboard polls
`GET /api/v1/alerts?limit=5`.

    .venv/bin/python bench/faces_uploads.py [--uploads 40] [--side 1024]

Reports the poll latency (median, p99, max) during the burst and before it (idle), and the uploads'
statuses: 201, or 503 + Retry-After when the encoder queue (`VIGIL_FACES_QUEUE_SIZE`) is full. Each
photo is the bundled astronaut at `side` px with a different pixel, so none is a duplicate.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import time
from collections import Counter

import httpx
from common import ADMIN, machine, pct, running_vigil, write_results


def photos(n: int, side: int) -> list[bytes]:
    import numpy as np
    from PIL import Image
    from skimage import data

    base = np.array(Image.fromarray(data.astronaut()).resize((side, side), Image.Resampling.LANCZOS))
    out = []
    for i in range(n):
        pixels = base.copy()
        pixels[0, i % side] = (i * 37) % 256  # one pixel differs: a different hash, the same face
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


async def poll(client: httpx.AsyncClient, stop: asyncio.Event, into: list[float], codes: Counter) -> None:
    """Latency of every poll, failed ones included (a 500 after a 30 s pool wait is the worst case)."""
    while not stop.is_set():
        started = time.perf_counter()
        try:
            r = await client.get("/api/v1/alerts", params={"limit": 5})
            codes[r.status_code] += 1
        except httpx.HTTPError as exc:
            codes[type(exc).__name__] += 1
        into.append(time.perf_counter() - started)
        await asyncio.sleep(0.05)


async def run(url: str, uploads: int, side: int) -> str:
    images = photos(uploads, side)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as client:
        r = await client.post("/api/v1/faces/events", json={"code": "bench", "name": "Bench", "running": True})
        r.raise_for_status()
        # Warm the encoder pool (its processes load the models on first use).
        files = {"file": ("warm.jpg", photos(1, 640)[0], "image/jpeg")}
        (await client.post("/api/v1/faces/images", data={"event_code": "bench"}, files=files)).raise_for_status()
        idle: list[float] = []
        idle_codes: Counter = Counter()
        stop = asyncio.Event()
        poller = asyncio.create_task(poll(client, stop, idle, idle_codes))
        await asyncio.sleep(2)
        stop.set()
        await poller
        busy: list[float] = []
        busy_codes: Counter = Counter()
        stop = asyncio.Event()
        poller = asyncio.create_task(poll(client, stop, busy, busy_codes))

        async def upload(i: int) -> tuple[int, str | None]:
            files = {"file": (f"p{i}.jpg", images[i], "image/jpeg")}
            try:
                r = await client.post("/api/v1/faces/images", data={"event_code": "bench"}, files=files)
            except httpx.HTTPError as exc:
                return type(exc).__name__, None
            return r.status_code, r.headers.get("retry-after")

        started = time.perf_counter()
        results = await asyncio.gather(*(upload(i) for i in range(uploads)))
        burst_s = time.perf_counter() - started
        stop.set()
        await poller
    statuses = Counter(str(status) for status, _ in results)
    retry_after = sorted({ra for status, ra in results if status == 503 and ra})

    def line(name: str, values: list[float], codes: Counter) -> str:
        return (f"| {name} | {len(values)} | {statistics.median(values) * 1000:.0f} | "
                f"{pct(values, 99) * 1000:.0f} | {max(values) * 1000:.0f} | {dict(sorted(codes.items(), key=str))} |")

    return "\n".join([
        f"### faces uploads vs reads: {uploads} concurrent uploads of {side} px photos",
        machine(),
        "",
        "| polls of GET /api/v1/alerts?limit=5 | n | median ms | p99 ms | max ms | statuses |",
        "|---|---|---|---|---|---|",
        line("idle", idle, idle_codes),
        line("during the upload burst", busy, busy_codes),
        "",
        f"uploads: {dict(sorted(statuses.items()))} in {burst_s:.1f} s"
        + (f"; 503 Retry-After: {', '.join(retry_after)}" if retry_after else ""),
    ])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uploads", type=int, default=40)
    parser.add_argument("--side", type=int, default=1024)
    args = parser.parse_args()
    with running_vigil() as (url, _settings):
        text = asyncio.run(run(url, args.uploads, args.side))
        write_results("faces_uploads", text)  # before the server stops: a slow shutdown loses nothing


if __name__ == "__main__":
    main()
