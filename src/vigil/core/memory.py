"""The garbage collector, set for a server: long-lived objects out of its way, request garbage in rare passes.

Measured (bench/results/http.md, "gc"): with CPython's defaults a full collection ran about every half
second under load and walked every object the app holds (routes, models, SQLAlchemy metadata, pydantic
validators), 15-25 ms each with the event loop stopped; p99 at 32 connections was 250-300 ms against a p50
of 25-50 ms. Freezing what exists after start-up takes those objects out of every collection, and a larger
young-generation threshold lets the short-lived garbage of many requests go in one pass.
"""

from __future__ import annotations

import gc

# Young collections every 50,000 net allocations (CPython: 700); a full one after 10 middle-aged ones.
THRESHOLDS = (50_000, 20, 10)


def tune_gc() -> None:
    """Collect once, freeze every object that exists now (the app as started), and raise the thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
