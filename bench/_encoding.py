"""Response encoding, measured (issue 10): pydantic-core `dump_json` straight to bytes (what FastAPI does
for a `response_model` route) against building Python objects first (`dump_python`), the step any
third-party encoder such as orjson would need before it could start. Then rows that are already plain
dicts (what `core.reads` returns, encoded by `json_rows`): pydantic-core's `to_json` against orjson.

    .venv/bin/python bench/_encoding.py
"""

import json
import timeit
import uuid
from datetime import UTC, datetime

from pydantic import TypeAdapter

from vigil.alerts.schemas import AlertRead
from vigil.core.pagination import Page
from vigil.people.schemas import PersonRead

now = datetime.now(UTC)
person = PersonRead(id=uuid.uuid4(), global_id=1, name="Ann", zone_id="z1", created_at=now, updated_at=now)
alert = {"id": uuid.uuid4(), "source": "bench", "kind": "bench", "subject": "s", "severity": "warning",
         "status": "open", "title": "bench alert", "data": {"i": 1, "zone": "z1"}, "count": 1,
         "first_seen_at": now, "last_seen_at": now, "created_at": now, "updated_at": now,
         "acknowledged_at": None, "acknowledged_by": None, "resolved_at": None, "resolved_by": None}
fields = AlertRead.model_fields
alert = {k: v for k, v in alert.items() if k in fields} | {
    k: None if f.is_required() else f.default for k, f in fields.items() if k not in alert}
try:
    page = TypeAdapter(Page[AlertRead]).validate_python({"items": [alert] * 50, "total": 50, "limit": 50,
                                                         "offset": 0})
    cases = {"person": (TypeAdapter(PersonRead), person), "alerts page of 50": (TypeAdapter(Page[AlertRead]), page)}
except Exception as exc:  # the alert schema may have grown required fields
    print(f"alerts page skipped: {str(exc).splitlines()[0]}")
    cases = {"person": (TypeAdapter(PersonRead), person)}
for name, (adapter, value) in cases.items():
    n = 2000
    # The default arguments bind this iteration's adapter and value (B023); timeit calls each lambda at once.
    to_bytes = timeit.timeit(lambda a=adapter, v=value: a.dump_json(v), number=n) / n * 1e6
    to_python = timeit.timeit(lambda a=adapter, v=value: a.dump_python(v, mode="json"), number=n) / n * 1e6
    stdlib = timeit.timeit(
        lambda a=adapter, v=value: json.dumps(a.dump_python(v, mode="json")).encode(), number=n) / n * 1e6
    print(f"{name:<20} dump_json {to_bytes:7.1f} us | dump_python alone {to_python:7.1f} us | "
          f"dump_python + json.dumps {stdlib:7.1f} us")

import orjson  # noqa: E402
import pydantic_core  # noqa: E402

rows = {"items": [dict(alert, id=uuid.uuid4()) for _ in range(50)], "total": 50, "limit": 50, "offset": 0}
assert orjson.dumps(rows, option=orjson.OPT_UTC_Z) == pydantic_core.to_json(rows)
n = 2000
for name, value in (("person row", rows["items"][0]), ("alerts rows of 50", rows)):
    core_us = timeit.timeit(lambda v=value: pydantic_core.to_json(v), number=n) / n * 1e6
    orjson_us = timeit.timeit(lambda v=value: orjson.dumps(v, option=orjson.OPT_UTC_Z), number=n) / n * 1e6
    print(f"{name:<20} pydantic_core.to_json {core_us:7.1f} us | orjson.dumps {orjson_us:7.1f} us (same bytes)")
