"""Value types several assets aggregates share: plane coordinates, tag ids and alert severities."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

SEVERITIES = ("info", "warning", "critical")
Severity = Literal["critical", "warning", "info"]
Coord = Annotated[float, Field(allow_inf_nan=False, ge=-1e6, le=1e6)]
TagId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^\S+$")]
