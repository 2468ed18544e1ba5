"""Pydantic types that the schemas and query parameters of every domain share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator


def to_utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive time is read as UTC.

    Raises ValueError (a 422), not OverflowError (a 500), for a time that Python can parse but whose
    UTC form leaves years 1-9999, such as `0001-01-01T00:00:00+05:00`.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range once converted to UTC (years 1 to 9999)") from None


# asyncpg writes Python's first and last instants as PostgreSQL's -infinity / infinity, which read
# back as naive datetimes: fine for a filter, not for a stored time.
_UNSTORABLE = (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))


def storable_utc(value: datetime) -> datetime:
    """to_utc, refusing the two instants the database driver would store as (-)infinity."""
    value = to_utc(value)
    if value in _UNSTORABLE:
        raise ValueError("the time must lie strictly between 0001-01-01T00:00:00Z and "
                         "9999-12-31T23:59:59.999999Z")
    return value


def not_a_number(value: object) -> object:
    """Refuse numbers for a time: pydantic would read 0.5 as a Unix timestamp, which the document
    (`format: date-time`, RFC 3339) does not allow, so clients would be told one thing and get another."""
    if isinstance(value, int | float) or (isinstance(value, str) and _looks_numeric(value)):
        raise ValueError("a time must be an RFC 3339 date-time such as 2026-01-31T12:00:00Z")
    return value


def _looks_numeric(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


UtcDatetime = Annotated[AwareDatetime, BeforeValidator(not_a_number), AfterValidator(storable_utc)]
"""A timestamp to store, which must carry its offset (what clients send in bodies); converted to UTC."""

LenientUtcDatetime = Annotated[datetime, BeforeValidator(not_a_number), AfterValidator(to_utc)]
"""A timestamp filter: with an offset, or naive and then read as UTC; converted to UTC."""

AwareTime = Annotated[AwareDatetime, BeforeValidator(not_a_number)]
"""A time that must carry its offset, given as RFC 3339 text (never a bare number)."""
