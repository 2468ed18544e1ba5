"""Location from RSSI: pure functions, no I/O (numpy/scipy), so they run in a worker thread and test alone.

1. RSSI -> distance by the log-distance path-loss model `rssi = A - 10 n log10(d)`, with A (RSSI at 1 m)
   and n (path-loss exponent) per gateway.
2. Per (tag, gateway) smoothing: a trimmed mean (or median) of the last readings within a window, in dB,
   where the noise is roughly Gaussian.
3. One gateway -> `single` (at the gateway, accuracy = the distance); two -> `midpoint` (on the segment,
   pulled toward the stronger); three or more -> `trilateration` by weighted non-linear least squares.

Range noise grows with distance (a constant dB error is a constant *relative* distance error), so each
range residual is weighted by 1/d. `accuracy_m` comes from the residuals (range noise estimate) times the
geometric dilution of precision, plus the mirror ambiguity when the gateways are (nearly) collinear.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

MIN_DISTANCE_M = 0.1
MAX_DISTANCE_M = 1000.0
# Gateways whose positions spread less than this across their main axis count as collinear.
COLLINEAR_SPREAD_M = 0.25
MAX_DOP = 1e3


@dataclass(frozen=True, slots=True)
class Reading:
    """One smoothed range from one gateway: its position and model, and the tag's RSSI there."""

    x: float
    y: float
    rssi: float
    tx_power: float = -45.0
    path_loss_exponent: float = 2.0

    @property
    def distance(self) -> float:
        """The range the smoothed RSSI implies under this gateway's path-loss model, metres."""
        return float(rssi_to_distance(self.rssi, self.tx_power, self.path_loss_exponent))


@dataclass(frozen=True, slots=True)
class Estimate:
    x: float
    y: float
    method: str  # "single" | "midpoint" | "trilateration"
    accuracy_m: float
    gateways: int


def rssi_to_distance(rssi: float | np.ndarray, tx_power: float | np.ndarray = -45.0,
                     path_loss_exponent: float | np.ndarray = 2.0) -> np.ndarray:
    """Invert `rssi = A - 10 n log10(d)`; clipped to [0.1 m, 1 km] so absurd readings stay finite."""
    d = np.power(10.0, (np.asarray(tx_power, dtype=float) - np.asarray(rssi, dtype=float))
                 / (10.0 * np.asarray(path_loss_exponent, dtype=float)))
    return np.clip(d, MIN_DISTANCE_M, MAX_DISTANCE_M)


def distance_to_rssi(distance: float | np.ndarray, tx_power: float = -45.0,
                     path_loss_exponent: float = 2.0) -> np.ndarray:
    """The model forward: expected RSSI at a distance (used to make synthetic data)."""
    d = np.maximum(np.asarray(distance, dtype=float), MIN_DISTANCE_M)
    return tx_power - 10.0 * path_loss_exponent * np.log10(d)


def smooth(values: Sequence[float], *, method: str = "trimmed_mean", trim: float = 0.2) -> float:
    """One value from a few noisy dB readings: median, or mean without the `trim` share at each end."""
    arr = np.sort(np.asarray(values, dtype=float))
    if arr.size == 0:
        raise ValueError("no readings to smooth")
    if method == "median":
        return float(np.median(arr))
    if method != "trimmed_mean":
        raise ValueError(f"unknown smoothing method {method!r}")
    cut = math.floor(arr.size * trim)
    if arr.size - 2 * cut <= 0:
        return float(np.median(arr))
    return float(arr[cut: arr.size - cut].mean())


def smooth_window(readings: Iterable[tuple[object, float, float]], *, window_s: float, max_readings: int,
                  method: str = "trimmed_mean", now: float | None = None) -> dict[object, float]:
    """Per gateway, smooth the last `max_readings` readings that fall within `window_s` of `now`.

    `readings` are (gateway key, unix time, rssi); `now` defaults to the newest reading, so a replay or a
    late batch is smoothed over its own time, not the wall clock.
    """
    rows = list(readings)
    if not rows:
        return {}
    end = max(t for _, t, _ in rows) if now is None else now
    per: dict[object, list[tuple[float, float]]] = {}
    for key, t, rssi in rows:
        if end - window_s <= t <= end:
            per.setdefault(key, []).append((t, rssi))
    out = {}
    for key, items in per.items():
        items.sort(key=lambda item: item[0])
        out[key] = smooth([rssi for _, rssi in items[-max_readings:]], method=method)
    return out


def locate(readings: Sequence[Reading]) -> Estimate:
    """Estimate a position from one smoothed reading per gateway."""
    if not readings:
        raise ValueError("no readings")
    pos = np.array([[r.x, r.y] for r in readings], dtype=float)
    dist = rssi_to_distance(np.array([r.rssi for r in readings]), np.array([r.tx_power for r in readings]),
                            np.array([r.path_loss_exponent for r in readings]))
    if len(readings) == 1:
        return Estimate(float(pos[0, 0]), float(pos[0, 1]), "single", float(dist[0]), 1)
    if len(readings) == 2:
        return _midpoint(pos, dist)
    return _trilaterate(pos, dist)


def _midpoint(pos: np.ndarray, dist: np.ndarray) -> Estimate:
    """On the segment between the two gateways, at the share of it the ranges suggest (nearer the stronger).

    The tag may be anywhere on the two circles' intersection, off the segment by up to their half chord,
    so accuracy is that offset, or half the ranges' disagreement when the circles do not meet.
    """
    p1, p2 = pos
    d1, d2 = float(dist[0]), float(dist[1])
    baseline = float(np.linalg.norm(p2 - p1))
    if baseline < 1e-9:
        return Estimate(float(p1[0]), float(p1[1]), "midpoint", (d1 + d2) / 2, 2)
    share = d1 / (d1 + d2)
    point = p1 + (p2 - p1) * share
    a = (d1 ** 2 - d2 ** 2 + baseline ** 2) / (2 * baseline)  # along the baseline from p1
    half_chord = math.sqrt(max(d1 ** 2 - a ** 2, 0.0))
    mismatch = abs(d1 + d2 - baseline) / 2 if half_chord == 0.0 else 0.0
    return Estimate(float(point[0]), float(point[1]), "midpoint", max(half_chord, mismatch), 2)


def _trilaterate(pos: np.ndarray, dist: np.ndarray) -> Estimate:
    n = len(dist)
    weights = 1.0 / np.maximum(dist, 0.5)
    centred = pos - pos.mean(axis=0)
    _, spread, axes = np.linalg.svd(centred, full_matrices=False)
    cross_spread = float(spread[-1] / math.sqrt(n)) if spread.size > 1 else 0.0

    if float(spread[0]) < 1e-6:  # every gateway at one point: only the range is known, not the bearing
        c = pos[0]
        spread_m = float(np.average(dist, weights=weights))
        return Estimate(float(c[0]), float(c[1]), "trilateration", spread_m, n)

    # Start from the inverse-square weighted centroid; nudge it off the gateways' main axis so a collinear
    # layout does not begin on the symmetry line, where the gradient across it is exactly zero.
    w0 = 1.0 / np.maximum(dist, 0.5) ** 2
    start = (pos * w0[:, None]).sum(axis=0) / w0.sum()
    if cross_spread < COLLINEAR_SPREAD_M:
        start = start + axes[-1] * 0.5

    def residuals(p: np.ndarray) -> np.ndarray:
        return weights * (np.linalg.norm(pos - p, axis=1) - dist)

    def jacobian(p: np.ndarray) -> np.ndarray:
        diff = p - pos
        norms = np.maximum(np.linalg.norm(diff, axis=1), 1e-9)
        return (weights / norms)[:, None] * diff

    # Levenberg-Marquardt with the analytic Jacobian: ~5x faster than the bounded solvers here, same fits.
    # It has no bounds, so the answer is clipped to a box that any sensible position lies in.
    span = float(np.ptp(pos, axis=0).max()) + float(dist.max())
    fit = least_squares(residuals, start, jac=jacobian, method="lm")
    p = np.clip(np.nan_to_num(fit.x, nan=0.0), pos.min(axis=0) - span, pos.max(axis=0) + span)

    # Range noise: the unweighted residual RMS, corrected for the two fitted unknowns.
    ranges = np.linalg.norm(pos - p, axis=1)
    raw = ranges - dist
    sigma = float(np.sqrt((raw ** 2).sum() / max(n - 2, 1)))
    dop = _dop(pos, p, weights)
    accuracy = sigma * min(dop, MAX_DOP)
    if cross_spread < COLLINEAR_SPREAD_M:
        # Mirror ambiguity: the reflection across the gateways' line fits the ranges just as well.
        offset = abs(float(np.dot(p - pos.mean(axis=0), axes[-1])))
        accuracy = math.hypot(accuracy, 2 * offset)
    return Estimate(float(p[0]), float(p[1]), "trilateration", float(accuracy), n)


def _dop(pos: np.ndarray, p: np.ndarray, weights: np.ndarray) -> float:
    """Geometric dilution of precision at `p`: how range errors turn into position error."""
    diff = p - pos
    norms = np.linalg.norm(diff, axis=1)
    if np.any(norms < 1e-9):
        diff = diff + 1e-6
        norms = np.linalg.norm(diff, axis=1)
    h = diff / norms[:, None]
    w = (weights / weights.mean()) ** 2
    info = h.T @ (h * w[:, None])
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return MAX_DOP
    trace = float(np.trace(cov))
    if not math.isfinite(trace) or trace < 0:
        return MAX_DOP
    return math.sqrt(trace)


__all__ = ["Estimate", "Reading", "distance_to_rssi", "locate", "rssi_to_distance", "smooth", "smooth_window"]
