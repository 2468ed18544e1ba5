"""Size bounds for free-form JSON fields that travel inside events.

Every event leaves through the outbox and the broker, which refuses records over 1 MiB. A free-form
object (a plate event's `tpms`, a vehicle's extra keys, a scenario's params) is therefore bounded
where it enters: at most `MAX_JSON_FIELD_BYTES` when serialised as compact JSON, else 422 naming the
field (`type: "json_too_large"`). The bound is in the OpenAPI schema as `x-max-json-bytes` and in the
field's description.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

MAX_JSON_FIELD_BYTES = 16 * 1024  # 16 KiB: far above any real payload, far below the broker's 1 MiB


def json_size(value: Any) -> int:
    """Bytes of `value` as compact JSON (how it is stored and published)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def check_json_size(value: Any, limit: int = MAX_JSON_FIELD_BYTES) -> Any:
    """Raise a pydantic error (-> 422 naming the field) when `value` is bigger than `limit` as JSON."""
    if value is None:
        return value
    size = json_size(value)
    if size > limit:
        raise PydanticCustomError(
            "json_too_large",
            "at most {limit} bytes of JSON are accepted here; this value has {size}",
            {"limit": limit, "size": size},
        )
    return value


_DESCRIPTION = f"Free-form JSON object, at most {MAX_JSON_FIELD_BYTES} bytes as compact JSON."

# A free-form object bounded in size; use as a field type (`tpms: BoundedJSON | None = None`).
BoundedJSON = Annotated[
    dict[str, Any],
    AfterValidator(check_json_size),
    Field(description=_DESCRIPTION, json_schema_extra={"x-max-json-bytes": MAX_JSON_FIELD_BYTES}),
]
