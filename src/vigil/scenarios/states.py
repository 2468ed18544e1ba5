"""The scenario state machine as data: the statuses, the moves the table allows, and pure functions over them.

Nothing here touches the database. `models` takes the status lists for its CHECK constraints,
`schemas` the status types and the allowed moves a scenario shows, and `service` and `runs` the
checks they make before every state change (`service.move_scenario` is where a status changes).
"""

from __future__ import annotations

from typing import Literal, get_args

from vigil.core.errors import InvalidState

Status = Literal["init_startup", "init_startup_processing", "active", "in_shutdown_processing", "inactive", "failed"]
RunStatus = Literal["queued", "running", "completed", "failed", "stopped", "cancelled"]

STATUSES: tuple[str, ...] = get_args(Status)
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)

# API.md: init_startup -> init_startup_processing -> active -> in_shutdown_processing -> inactive;
# any state -> failed; failed|inactive -> init_startup.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "init_startup": ("init_startup_processing", "failed"),
    "init_startup_processing": ("active", "failed"),
    "active": ("in_shutdown_processing", "failed"),
    "in_shutdown_processing": ("inactive", "failed"),
    "inactive": ("init_startup", "failed"),
    "failed": ("init_startup",),
}
if set(TRANSITIONS) != set(STATUSES):
    raise AssertionError()

# States in which a run may be working on the scenario.
LIVE_STATUSES = frozenset({"init_startup_processing", "active", "in_shutdown_processing"})
LIVE_RUN_STATUSES = frozenset({"queued", "running"})
TERMINAL_RUN_STATUSES = frozenset({"completed", "failed", "stopped", "cancelled"})
if set(RUN_STATUSES) != LIVE_RUN_STATUSES | TERMINAL_RUN_STATUSES:
    raise AssertionError()

# A failed scenario's `last_error` and a run's `error` keep at most this many characters.
MAX_ERROR_LENGTH = 2000


class IllegalTransition(InvalidState):
    title = "Illegal scenario transition"


def allowed_moves(status: str) -> list[str]:
    """The statuses the table lets a scenario in `status` move to (none for an unknown status)."""
    return list(TRANSITIONS.get(status, ()))


def check_transition(current: str, target: str) -> None:
    """Raise IllegalTransition (409, naming the allowed moves) unless the table allows current -> target."""
    allowed = allowed_moves(current)
    if target not in allowed:
        raise IllegalTransition(
            f"A scenario cannot move from {current} to {target}; from {current} it can move to: "
            f"{', '.join(allowed) or 'nothing'}.",
            current=current, requested=target, allowed=allowed,
        )


def short_error(error: str) -> str:
    """The error cut to MAX_ERROR_LENGTH, so a runner's long traceback cannot bloat the rows that keep it."""
    return error if len(error) <= MAX_ERROR_LENGTH else error[: MAX_ERROR_LENGTH - 3] + "..."


__all__ = [
    "LIVE_RUN_STATUSES",
    "LIVE_STATUSES",
    "MAX_ERROR_LENGTH",
    "RUN_STATUSES",
    "STATUSES",
    "TERMINAL_RUN_STATUSES",
    "TRANSITIONS",
    "IllegalTransition",
    "RunStatus",
    "Status",
    "allowed_moves",
    "check_transition",
    "short_error",
]
