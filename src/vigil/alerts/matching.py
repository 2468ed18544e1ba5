"""Pure rules of alert policies and mutes: which alerts a `match` selects, and whether a schedule is active.

No database and no clock here: `now` is always passed in, so the rules are unit-tested at any instant.
The same `match` is evaluated in Python (one alert being raised) and in SQL (the active alerts a new
policy applies to, quiet resolve), and both readings agree.
"""

from __future__ import annotations

import fnmatch
import re
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, true
from sqlalchemy.sql.elements import ColumnElement

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = datetime.weekday()
TOP_FIELDS = ("source", "kind", "severity")
# Where the sources put these: inside the alert's data (reid: zone_id/camera_id, plate: camera_id,
# geofence: site_id).
DATA_FIELDS = ("zone_id", "camera_id", "site_id")
MATCH_FIELDS = (*TOP_FIELDS, "subject", *DATA_FIELDS)


def matches(match: dict[str, Any], alert: Any) -> bool:
    """Whether an alert (an ORM row or anything with source/kind/severity/subject/data) is selected."""
    for field in TOP_FIELDS:
        wanted = match.get(field)
        if wanted is not None and getattr(alert, field) != wanted:
            return False
    pattern = match.get("subject")
    if pattern is not None and not fnmatch.fnmatchcase(alert.subject or "", pattern):
        return False
    data = alert.data or {}
    for field in DATA_FIELDS:
        wanted = match.get(field)
        if wanted is not None and str(data.get(field)) != str(wanted):
            return False
    return True


def glob_to_like(pattern: str) -> str:
    """fnmatch's `*` and `?` as a LIKE pattern (escape `\\`), with LIKE's own `%` and `_` taken literally.

    `[...]` classes are not translated; `match_clause` falls back to a regex for patterns that use them.
    """
    out = []
    for ch in pattern:
        if ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        elif ch in "%_\\":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def match_clause(match: dict[str, Any], alert_table: Any) -> ColumnElement[bool]:
    """The SQL reading of `matches` over the alerts table (or its ORM class)."""
    clauses: list[ColumnElement[bool]] = []
    for field in TOP_FIELDS:
        if match.get(field) is not None:
            clauses.append(getattr(alert_table, field) == match[field])
    pattern = match.get("subject")
    if pattern is not None:
        if "[" in pattern:
            # fnmatch.translate gives a Python regex; (?s:...) and \Z are what PostgreSQL lacks.
            regex = fnmatch.translate(pattern).replace("(?s:", "(?:").replace(r"\Z", "$")
            clauses.append(alert_table.subject.regexp_match("^" + regex))
        else:
            clauses.append(alert_table.subject.like(glob_to_like(pattern), escape="\\"))
    for field in DATA_FIELDS:
        if match.get(field) is not None:
            clauses.append(alert_table.data[field].astext == str(match[field]))
    return and_(true(), *clauses)


# --- schedules -------------------------------------------------------------------------------

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


def parse_hhmm(value: str) -> int:
    """'08:30' -> minutes since midnight; '24:00' (an end of day) -> 1440."""
    if not isinstance(value, str) or not _HHMM.match(value):
        raise ValueError(f"{value!r} is not a time of day HH:MM (00:00-24:00)")
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def schedule_active(schedule: dict[str, Any] | None, now: datetime) -> bool:
    """Whether `now` falls in the schedule's active hours, read in its IANA time zone.

    `days` maps a weekday to [start, end] ranges, end exclusive. A range whose end is not after its start
    (["22:00", "06:00"]) runs past midnight into the next day. A moment whose local date is in
    `except_dates` is never active. No schedule: always active.
    """
    if not schedule:
        return True
    local = now.astimezone(ZoneInfo(schedule["tz"]))
    today = local.date()
    if today.isoformat() in set(schedule.get("except_dates") or ()):
        return False
    minute = _minutes(local.time())
    days = schedule.get("days") or {}
    for start, end in days.get(DAYS[today.weekday()], ()):
        s, e = parse_hhmm(start), parse_hhmm(end)
        if (s < e and s <= minute < e) or (e <= s and minute >= s):
            return True
    yesterday: date = today - timedelta(days=1)
    for start, end in days.get(DAYS[yesterday.weekday()], ()):
        s, e = parse_hhmm(start), parse_hhmm(end)
        if e <= s and minute < e:  # the tail of yesterday's range that crossed midnight
            return True
    return False


__all__ = ["DAYS", "MATCH_FIELDS", "glob_to_like", "match_clause", "matches", "parse_hhmm", "schedule_active"]
