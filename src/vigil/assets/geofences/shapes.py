"""Geofence shapes and the enter/exit state machine with hysteresis: pure functions (shapely), no I/O.

A location is `depth` metres inside a fence (negative outside). A tag near the edge must not flap, so
a crossing counts only when it is clear: inside by more than `margin_m`, or inside (by any amount) for
`dwell_s` seconds without a break; exits likewise. `dwell_s = 0` turns the dwell path off, so then only
the margin decides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from shapely import Point, Polygon
from shapely.prepared import PreparedGeometry, prep
from shapely.validation import explain_validity


class InvalidShape(ValueError):
    """A geofence geometry that cannot be used (the service turns it into a 422)."""


@dataclass(frozen=True, slots=True)
class Shape:
    """A circle (exact distances) or a prepared polygon."""

    kind: str
    center: tuple[float, float] | None = None
    radius: float | None = None
    polygon: Polygon | None = None
    prepared: PreparedGeometry | None = None

    def depth(self, x: float, y: float) -> float:
        """Signed distance to the edge: > 0 inside, < 0 outside, metres."""
        if self.kind == "circle":
            if self.center is None or self.radius is None:
                raise AssertionError()
            return self.radius - math.dist(self.center, (x, y))
        if self.polygon is None or self.prepared is None:
            raise AssertionError()
        point = Point(x, y)
        edge = self.polygon.boundary.distance(point)
        return edge if self.prepared.contains(point) else -edge


def circle(center: Sequence[float] | None, radius_m: float | None) -> Shape:
    """A circle from its center and radius; a missing or non-positive radius is an InvalidShape."""
    if center is None or radius_m is None:
        raise InvalidShape("a circle needs `center` and `radius_m`")
    if not (math.isfinite(radius_m) and radius_m > 0):
        raise InvalidShape("`radius_m` must be greater than 0")
    return Shape("circle", center=(float(center[0]), float(center[1])), radius=float(radius_m))


def polygon(points: Sequence[Sequence[float]] | None) -> Shape:
    """A simple polygon from its corners; the ring may be given open or closed."""
    if points is None:
        raise InvalidShape("a polygon needs `polygon`: a list of [x, y] corners")
    ring = [(float(p[0]), float(p[1])) for p in points]
    if len(ring) > 1 and ring[0] == ring[-1]:
        ring = ring[:-1]
    if len(set(ring)) < 3:
        raise InvalidShape("a polygon needs at least 3 distinct corners")
    poly = Polygon(ring)
    if not poly.is_valid:
        raise InvalidShape(f"invalid polygon: {explain_validity(poly)}")
    if poly.area <= 1e-9:
        raise InvalidShape("the polygon has no area")
    return Shape("polygon", polygon=poly, prepared=prep(poly))


def normalised_ring(points: Sequence[Sequence[float]]) -> list[list[float]]:
    """The corners as stored: open ring, floats."""
    ring = [[float(p[0]), float(p[1])] for p in points]
    return ring[:-1] if len(ring) > 1 and ring[0] == ring[-1] else ring


def build(kind: str, *, center: Sequence[float] | None = None, radius_m: float | None = None,
          points: Sequence[Sequence[float]] | None = None) -> Shape:
    """The shape of a fence of `kind` from the fields that kind takes; the others must be absent."""
    if kind == "circle":
        if points is not None:
            raise InvalidShape("a circle takes `center` and `radius_m`, not `polygon`")
        return circle(center, radius_m)
    if kind == "polygon":
        if center is not None or radius_m is not None:
            raise InvalidShape("a polygon takes `polygon`, not `center` or `radius_m`")
        return polygon(points)
    raise InvalidShape(f"unknown geofence kind {kind!r}")


@dataclass(frozen=True, slots=True)
class FenceState:
    inside: bool
    since: datetime
    pending_since: datetime | None = None


def step(state: FenceState | None, depth: float, at: datetime, *, margin_m: float, dwell_s: float
         ) -> tuple[FenceState, str | None]:
    """Advance one asset's state with one fence by one location; returns the new state and "enter",
    "exit" or None. A first location counts as coming from outside."""
    if state is None:
        state = FenceState(inside=False, since=at)
    # Seen from the current side: how far across the edge the tag now is (> 0 means on the other side).
    across = depth if not state.inside else -depth
    if across > margin_m:
        return FenceState(inside=not state.inside, since=at), ("enter" if not state.inside else "exit")
    if across > 0 and dwell_s > 0:
        pending = state.pending_since or at
        if (at - pending).total_seconds() >= dwell_s:
            return FenceState(inside=not state.inside, since=at), ("enter" if not state.inside else "exit")
        return replace(state, pending_since=pending), None
    return (replace(state, pending_since=None) if state.pending_since else state), None


__all__ = ["FenceState", "InvalidShape", "Shape", "build", "circle", "normalised_ring", "polygon", "step"]
