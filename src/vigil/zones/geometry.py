"""Polygon rules for zones, pure and unit-tested: GeoJSON rings in, a valid shapely Polygon out.

Each rule that fails raises `PolygonError` naming the rule, so a client learns what to fix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry import Polygon

Position = Sequence[float]
Ring = Sequence[Position]


class PolygonError(ValueError):
    """A polygon that breaks one rule; `rule` is a stable machine-readable name."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


def _point(p: Position) -> str:
    return f"[{p[0]:g}, {p[1]:g}]"


def _check_ring(ring: Ring, index: int) -> list[tuple[float, float]]:
    name = "outer ring" if index == 0 else f"hole {index}"
    if len(ring) == 0:
        raise PolygonError("too_few_points", f"{name} is empty")
    points = [(float(p[0]), float(p[1])) for p in ring]
    if points[0] != points[-1] or len(points) == 1:
        raise PolygonError(
            "not_closed",
            f"{name} is not closed: its first point {_point(points[0])} must be repeated as the last "
            f"(the last is {_point(points[-1])})",
        )
    distinct = len(set(points[:-1]))
    if distinct < 3:
        raise PolygonError("too_few_points", f"{name} needs at least 3 distinct points, it has {distinct}")
    return points


def _check_simple(ring: Polygon, name: str) -> None:
    # The hull, not the signed area: a bow-tie's two halves cancel out to zero area but it is
    # self-intersecting, not degenerate.
    if ring.convex_hull.area == 0:
        raise PolygonError("zero_area", f"{name} has zero area: its points are all on one line")
    if not ring.is_valid:
        reason = shapely.is_valid_reason(ring)
        if reason.startswith(("Self-intersection", "Ring Self-intersection")):
            raise PolygonError("self_intersecting", f"{name} intersects itself ({reason})")
        raise PolygonError("invalid", f"{name} is not a valid polygon ({reason})")


def polygon_from_rings(rings: Sequence[Ring]) -> Polygon:
    """Validate GeoJSON Polygon coordinates (outer ring, then holes) and build the shapely Polygon.

    Rules, checked in this order: at least one ring; every ring closed (first point == last);
    at least 3 distinct points per ring; non-zero area; simple (no self-intersection) and
    otherwise valid per OGC (holes inside the shell, not overlapping).
    """
    if not rings:
        raise PolygonError("too_few_points", "a polygon needs an outer ring")
    checked = [_check_ring(ring, i) for i, ring in enumerate(rings)]
    for i, ring in enumerate(checked):
        _check_simple(Polygon(ring), "outer ring" if i == 0 else f"hole {i}")
    polygon = Polygon(checked[0], checked[1:])
    if not polygon.is_valid:
        reason = shapely.is_valid_reason(polygon)
        raise PolygonError("invalid_holes", f"holes do not fit the outer ring: {reason}")
    return polygon


def rings_from_corners(corners: Sequence[float]) -> list[list[list[float]]]:
    """Seed-style corners x1, y1, ..., x4, y4 as one closed GeoJSON ring."""
    if len(corners) != 8:
        raise PolygonError("too_few_points", "corners need x1..x4 and y1..y4")
    points = [[float(corners[i]), float(corners[i + 1])] for i in range(0, 8, 2)]
    return [[*points, points[0]]]


def prepared(rings: Sequence[Ring]) -> Polygon:
    """The polygon with shapely's prepared index built, for many point tests against one shape."""
    polygon = Polygon(rings[0], rings[1:])
    shapely.prepare(polygon)
    return polygon


def covers_points(polygon: Polygon, points: Sequence[Position]) -> list[bool]:
    """Whether each point lies inside the polygon or on its boundary (vectorised)."""
    if not points:
        return []
    xy = np.asarray(points, dtype=float)
    return shapely.intersects_xy(polygon, xy[:, 0], xy[:, 1]).tolist()
