"""Polygon rules (pure): each broken rule is reported by name; valid shapes pass; containment."""

import pytest

from vigil.zones.geometry import PolygonError, covers_points, polygon_from_rings, prepared, rings_from_corners

SQUARE = [[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]]


@pytest.mark.parametrize(("rings", "rule", "words"), [
    ([[[0, 0], [4, 0], [4, 4], [0, 4]]], "not_closed", "not closed"),
    ([[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]], "self_intersecting", "intersects itself"),
    ([[[0, 0], [4, 0], [4, 4], [2, 0], [0, 4], [0, 0]]], "self_intersecting", "intersects itself"),
    ([[[0, 0], [1, 1], [2, 2], [0, 0]]], "zero_area", "zero area"),
    ([[[0, 0], [1, 1], [0, 0], [0, 0]]], "too_few_points", "at least 3 distinct points"),
    ([[[0, 0]]], "not_closed", "not closed"),
    ([[]], "too_few_points", "empty"),
    ([], "too_few_points", "outer ring"),
    ([SQUARE, [[10, 10], [11, 10], [11, 11], [10, 10]]], "invalid_holes", "Hole lies outside shell"),
    ([SQUARE, [[1, 1], [2, 1], [3, 1], [1, 1]]], "zero_area", "hole 1 has zero area"),
])
def test_each_broken_rule_is_named(rings, rule, words):
    with pytest.raises(PolygonError) as err:
        polygon_from_rings(rings)
    assert err.value.rule == rule
    assert words in err.value.message


def test_valid_polygons_pass_including_holes_and_concave_shapes():
    assert polygon_from_rings([SQUARE]).area == 16
    assert polygon_from_rings([SQUARE, [[1, 1], [2, 1], [2, 2], [1, 1]]]).area == 15.5
    concave = [[0, 0], [4, 0], [4, 4], [2, 1], [0, 4], [0, 0]]
    assert polygon_from_rings([concave]).area == pytest.approx(10)


def test_corners_make_one_closed_ring():
    assert rings_from_corners([0, 0, 4, 0, 4, 4, 0, 4]) == [[[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]]]


def test_covers_points_counts_the_boundary_as_inside():
    poly = prepared([[[0, 0], [4, 0], [4, 4], [2, 1], [0, 4], [0, 0]]])
    assert covers_points(poly, [[1, 1], [2, 3], [0, 0], [4, 2], [-1, 0], [2, 1]]) == [
        True, False, True, True, False, True,
    ]
    assert covers_points(poly, []) == []
