"""Asset analytics as pure functions over histories: dwell per geofence, time seen and time moving."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from datetime import datetime, timedelta
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def dwell(events: Iterable[tuple[K, str, datetime]], *, inside_at_start: Iterable[K],
          since: datetime, until: datetime) -> dict[K, tuple[float, int]]:
    """Seconds inside and visits per fence within [since, until], from enter/exit events in that range.

    `inside_at_start` are the fences the asset was inside at `since` (their last earlier event was an
    enter); a visit still open at `until` counts up to `until`.
    """
    open_at: dict[K, datetime] = dict.fromkeys(inside_at_start, since)
    totals: dict[K, list[float]] = {key: [0.0, 1] for key in open_at}
    for key, kind, at in sorted(events, key=lambda e: e[2]):
        if not since <= at <= until:
            continue
        entry = totals.setdefault(key, [0.0, 0])
        if kind == "enter" and key not in open_at:
            open_at[key] = at
            entry[1] += 1
        elif kind == "exit" and key in open_at:
            entry[0] += (at - open_at.pop(key)).total_seconds()
    for key, start in open_at.items():
        totals[key][0] += max((until - start).total_seconds(), 0.0)
    return {key: (seconds, int(visits)) for key, (seconds, visits) in totals.items()}


def utilisation(points: Iterable[tuple[datetime, float, float]], *, since: datetime, until: datetime,
                gap_s: float, moving_m: float) -> tuple[float, float]:
    """(seconds seen, seconds moving) within [since, until] from a location history.

    An estimate vouches for the asset being seen until the next one, but for at most `gap_s` (tags
    report often; a longer silence is time unseen). A step between two estimates at most `gap_s` apart
    that moved more than `moving_m` (above location noise) is time moving.
    """
    pts = sorted(points, key=lambda p: p[0])
    seen = moving = 0.0
    for i, (t, x, y) in enumerate(pts):
        vouched_until = t + timedelta(seconds=gap_s)
        if i + 1 < len(pts):
            next_t, next_x, next_y = pts[i + 1]
            vouched_until = min(vouched_until, next_t)
            if (next_t - t).total_seconds() <= gap_s and math.dist((x, y), (next_x, next_y)) > moving_m:
                moving += _overlap(t, next_t, since, until)
        seen += _overlap(t, vouched_until, since, until)
    return seen, moving


def _overlap(start: datetime, end: datetime, since: datetime, until: datetime) -> float:
    return max((min(end, until) - max(start, since)).total_seconds(), 0.0)
