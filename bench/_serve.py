"""Serve the app for a benchmark, optionally with the people directory cache switched off.

    python bench/_serve.py [--no-cache] [--fetch-wait-ms N] [--deflate]   (settings from the environment)

`--fetch-wait-ms` sets fetch_max_wait_ms on every consumer (the core fan-out one too), to show what
the embedded broker's fetch holding costs per hop.
"""

import sys

import uvicorn

from vigil.cli import uvicorn_config
from vigil.core.cache import Cache
from vigil.core.config import Settings
from vigil.core.logging import setup_logging

if "--no-cache" in sys.argv:
    import json

    async def _compute_only(self, name, key, compute, *, ttl_s=None):
        return json.dumps(await compute(), default=str).encode()

    Cache.get_or_set_json = _compute_only  # every directory read goes to PostgreSQL (get_or_set uses it too)

if "--fetch-wait-ms" in sys.argv:
    from vigil.core.messaging import ConsumerRunner

    wait_ms = int(sys.argv[sys.argv.index("--fetch-wait-ms") + 1])
    original = ConsumerRunner._make_consumer

    def _make_consumer(self):
        self.spec.fetch_max_wait_ms = wait_ms
        return original(self)

    ConsumerRunner._make_consumer = _make_consumer

settings = Settings()
if "--deflate" in sys.argv:
    settings = settings.model_copy(update={"ws_deflate": True})
setup_logging("WARNING")
uvicorn.Server(uvicorn_config(settings)).run()  # exactly what `vigil serve` runs
