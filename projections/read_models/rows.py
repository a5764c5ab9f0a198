"""Row-level conventions shared by the projector and the queries: dates, times, amounts."""

from __future__ import annotations

import datetime

from domain.money import Money

# The founding row of an organisation's parent and employee count applies from "day 0":
# before its founding date a union has its founding parent (Organization.parent_on).
DAY_ZERO = 0
# "Known now": later than any recorded time.
KNOWN_NOW_US = 2**62


def day_int(day: datetime.date) -> int:
    return day.year * 10_000 + day.month * 100 + day.day


def int_day(value: int | None) -> datetime.date | None:
    if value is None or value == DAY_ZERO:
        return None
    return datetime.date(value // 10_000, value // 100 % 100, value % 100)


def iso_day(value: int | None) -> str | None:
    day = int_day(value)
    return day.isoformat() if day else None


def micros(moment: datetime.datetime) -> int:
    """Microseconds since the epoch; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    delta = moment - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int | None) -> str | None:
    if value is None:
        return None
    moment = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(
        microseconds=value
    )
    return moment.isoformat()


def known_us(known_at: datetime.datetime | None) -> int:
    return KNOWN_NOW_US if known_at is None else micros(known_at)


def amount(fen: int | None) -> str:
    return str(Money(int(fen or 0)))
