"""The error responses the assets routes declare in the OpenAPI document, described once for all of them."""

from __future__ import annotations

from typing import Any

_TEXT = {404: "Unknown id", 409: "Conflict (duplicate natural key or illegal transition)",
         422: "Validation failed or unknown reference"}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that can answer the given error statuses."""
    return {code: {"description": _TEXT[code]} for code in codes}
