"""Pure policy rules: schedules (with an injected "now", across day boundaries and time zones), matching."""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from vigil.alerts.matching import glob_to_like, matches, parse_hhmm, schedule_active
from vigil.alerts.schemas import PolicyCreate, Schedule

OFFICE = {
    "tz": "Europe/Paris",
    "days": {d: [["08:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
}
NIGHT = {"tz": "America/New_York", "days": {"mon": [["22:00", "06:00"]]}}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("moment", "active"),
    [
        ("2026-12-01T07:59:00+00:00", True),  # Tue 08:59 Paris (UTC+1)
        ("2026-12-01T06:59:00+00:00", False),  # Tue 07:59 Paris
        ("2026-12-01T17:00:00+00:00", False),  # Tue 18:00 Paris: the end is exclusive
        ("2026-12-01T16:59:59+00:00", True),
        ("2026-12-05T10:00:00+00:00", False),  # Saturday
        ("2026-07-01T06:30:00+00:00", True),  # summer: 08:30 Paris (UTC+2)
        ("2026-07-01T16:30:00+00:00", False),  # summer: 18:30 Paris
    ],
)
def test_office_hours_read_in_the_schedule_time_zone(moment, active):
    assert schedule_active(OFFICE, at(moment)) is active


@pytest.mark.parametrize(
    ("moment", "active"),
    [
        ("2026-11-30T21:59:00-05:00", False),  # Mon 21:59 New York
        ("2026-11-30T22:00:00-05:00", True),  # Mon 22:00: starts
        ("2026-12-01T03:00:00+00:00", True),  # Mon 22:00 NY is Tue 03:00 UTC: the UTC day differs
        ("2026-12-01T05:59:00-05:00", True),  # Tue 05:59 NY: the tail of Monday's range, past midnight
        ("2026-12-01T06:00:00-05:00", False),  # Tue 06:00: over
        ("2026-12-01T22:30:00-05:00", False),  # Tue night: only Monday night is active
        ("2026-12-07T02:00:00-05:00", False),  # Mon 02:00: Sunday had no range to spill over
    ],
)
def test_a_range_that_crosses_midnight_spills_into_the_next_local_day(moment, active):
    assert schedule_active(NIGHT, at(moment)) is active


def test_except_dates_are_local_dates():
    schedule = {**OFFICE, "except_dates": ["2026-12-25"]}
    assert schedule_active(schedule, at("2026-12-24T10:00:00+00:00")) is True
    assert schedule_active(schedule, at("2026-12-25T10:00:00+00:00")) is False
    # 23:30 UTC on the 24th is already the 25th in Paris: excluded (and outside hours anyway); a 24h
    # schedule shows the local date is what counts.
    all_day = {
        "tz": "Europe/Paris",
        "days": {"thu": [["00:00", "24:00"]], "fri": [["00:00", "24:00"]]},
        "except_dates": ["2026-12-25"],
    }
    assert schedule_active(all_day, at("2026-12-24T22:30:00+00:00")) is True  # Thu 23:30 Paris
    assert schedule_active(all_day, at("2026-12-24T23:30:00+00:00")) is False  # Fri 00:30 Paris, excluded


def test_no_schedule_is_always_active():
    assert schedule_active(None, at("2026-12-05T03:00:00+00:00")) is True


def test_hhmm():
    assert parse_hhmm("00:00") == 0 and parse_hhmm("24:00") == 1440 and parse_hhmm("08:30") == 510
    for bad in ("24:01", "8:00", "08:60", "x"):
        with pytest.raises(ValueError):
            parse_hhmm(bad)


def test_schedule_schema_refuses_bad_input():
    for bad in (
        {"tz": "Mars/Base", "days": {}},
        {"tz": "UTC", "days": {"monday": []}},
        {"tz": "UTC", "days": {"mon": [["08:00"]]}},
        {"tz": "UTC", "days": {"mon": [["08:00", "25:00"]]}},
        {"tz": "UTC", "days": {}, "except_dates": ["2026-13-01"]},
    ):
        with pytest.raises(ValueError):
            Schedule.model_validate(bad)
    PolicyCreate.model_validate({"name": "p", "schedule": OFFICE})


def alert(**kw):
    base = {
        "source": "reid",
        "kind": "intrusion",
        "severity": "warning",
        "subject": "global_id:7/zone:Z1",
        "data": {"zone_id": "Z1", "camera_id": "cam-1"},
    }
    return SimpleNamespace(**(base | kw))


def test_matching_fields_and_subject_glob():
    assert matches({}, alert())
    assert matches({"source": "reid", "zone_id": "Z1", "subject": "global_id:*"}, alert())
    assert not matches({"source": "plate"}, alert())
    assert not matches({"zone_id": "Z2"}, alert())
    assert not matches({"subject": "global_id:8*"}, alert())
    assert matches({"subject": "global_id:?/zone:Z[12]"}, alert())
    assert matches({"site_id": "s1"}, alert(data={"site_id": "s1"}))
    assert not matches({"camera_id": "cam-1"}, alert(data={}))


def test_glob_to_like_escapes_like_wildcards():
    assert glob_to_like("a*b?c") == "a%b_c"
    assert glob_to_like("100%_x") == "100\\%\\_x"
