"""The transition table: every allowed move passes, forbidden ones are 409s that name the allowed moves."""

import itertools

import pytest

from vigil.core.errors import InvalidState
from vigil.scenarios.states import STATUSES, TRANSITIONS, allowed_moves, check_transition

# API.md, written out by hand so that an edit of the table has to be an edit of this test too.
ALLOWED = {
    ("init_startup", "init_startup_processing"),
    ("init_startup_processing", "active"),
    ("active", "in_shutdown_processing"),
    ("in_shutdown_processing", "inactive"),
    ("failed", "init_startup"),
    ("inactive", "init_startup"),
    *((state, "failed") for state in STATUSES if state != "failed"),
}


def test_table_covers_every_state_and_only_known_states():
    assert set(TRANSITIONS) == set(STATUSES)
    assert all(set(moves) <= set(STATUSES) for moves in TRANSITIONS.values())
    assert {(a, b) for a, moves in TRANSITIONS.items() for b in moves} == ALLOWED


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_every_allowed_move_passes(current, target):
    check_transition(current, target)
    assert target in allowed_moves(current)


FORBIDDEN = sorted(set(itertools.product(STATUSES, STATUSES)) - ALLOWED)


@pytest.mark.parametrize(("current", "target"), [
    ("init_startup", "active"),  # skipping the dispatch
    ("init_startup", "inactive"),
    ("init_startup_processing", "inactive"),
    ("active", "init_startup"),
    ("active", "active"),
    ("in_shutdown_processing", "active"),
    ("inactive", "active"),
    ("failed", "failed"),
    ("failed", "active"),
])
def test_sample_of_forbidden_moves_is_refused_with_the_allowed_ones(current, target):
    assert (current, target) in FORBIDDEN
    with pytest.raises(InvalidState) as info:
        check_transition(current, target)
    err = info.value
    assert err.status == 409
    assert err.extra["allowed"] == list(TRANSITIONS[current])
    for move in TRANSITIONS[current]:
        assert move in err.detail


def test_every_forbidden_move_is_refused():
    for current, target in FORBIDDEN:
        with pytest.raises(InvalidState):
            check_transition(current, target)


def test_unknown_states_are_refused():
    with pytest.raises(InvalidState):
        check_transition("init_startup", "exploded")
    with pytest.raises(InvalidState) as info:
        check_transition("exploded", "failed")
    assert info.value.extra["allowed"] == []


def test_retry_backoff_doubles_and_is_capped():
    from vigil.scenarios.consumers import backoff_s

    assert [backoff_s(2.0, a) for a in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert backoff_s(2.0, 30) == 60.0
    assert backoff_s(0.0, 3) == 0.0
