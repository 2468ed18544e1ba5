"""Plate text rules: the normalised form every lookup uses, and a bounded edit distance for fuzzy search."""

from __future__ import annotations


def normalize_plate(plate: str) -> str:
    """Upper case, letters and digits only: `ab-123 c` -> `AB123C` (any script, not just ASCII)."""
    return "".join(ch for ch in plate.upper() if ch.isalnum())


def within_distance(a: str, b: str, max_distance: int) -> bool:
    """True when the Levenshtein distance of a and b is at most max_distance.

    Stops as soon as a whole row of the table exceeds the bound, so far-apart plates cost little.
    """
    if abs(len(a) - len(b)) > max_distance:
        return False
    if a == b:
        return True
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > max_distance:
            return False
        previous = current
    return previous[-1] <= max_distance
