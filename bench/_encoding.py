"""Response encoding, measured (issue 10): pydantic-core `dump_json` straight to bytes (what FastAPI does
for a `response_model` route) against building Python objects first (`dump_python`), the step any
third-party encoder such as orjson would need before it could start.

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
alert = {k: v for k, v in alert.items() if k in fields} | {k: None for k in fields if k not in alert}
try:
    page = TypeAdapter(Page[AlertRead]).validate_python({"items": [alert] * 50, "total": 50, "limit": 50,
                                                         "offset": 0})
    cases = {"person": (TypeAdapter(PersonRead), person), "alerts page of 50": (TypeAdapter(Page[AlertRead]), page)}
except Exception as exc:  # the alert schema may have grown required fields
    print(f"alerts page skipped: {exc!r}")
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
