"""Months (会计期间, "YYYY-MM") and date parsing at the edges of the domain."""

from __future__ import annotations

import calendar
import datetime
import re
from dataclasses import dataclass

from domain.base import value_type
from domain.errors import InvalidValue

_MONTH_PATTERN = re.compile(r"^([0-9]{4})-([0-9]{2})$")
_DATE_PATTERN = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
# The ledger keeps no history before the founding of the ACFTU's accounting system, nor far future.
EARLIEST_YEAR = 1949
LATEST_YEAR = 2200


@value_type
@dataclass(frozen=True, slots=True, order=True)
class Month:
    """A calendar month, the unit of dues, levies and month-end closes (月结)."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not (EARLIEST_YEAR <= self.year <= LATEST_YEAR) or not (1 <= self.month <= 12):
            raise InvalidValue("period", f"{self.year:04d}-{self.month:02d} is not a month")

    @classmethod
    def parse(cls, text: str, *, field: str = "period") -> Month:
        match = _MONTH_PATTERN.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidValue(field, "a month is written YYYY-MM")
        year, month = int(match.group(1)), int(match.group(2))
        if not (EARLIEST_YEAR <= year <= LATEST_YEAR) or not (1 <= month <= 12):
            raise InvalidValue(field, f"{text} is not a month")
        return cls(year, month)

    @classmethod
    def of(cls, day: datetime.date) -> Month:
        return cls(day.year, day.month)

    @property
    def first_day(self) -> datetime.date:
        return datetime.date(self.year, self.month, 1)

    @property
    def last_day(self) -> datetime.date:
        return datetime.date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    def contains(self, day: datetime.date) -> bool:
        return day.year == self.year and day.month == self.month

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def parse_date(text: str, *, field: str) -> datetime.date:
    """A calendar date written YYYY-MM-DD, within the years the ledger accepts."""
    if isinstance(text, datetime.date):
        day = text
    else:
        if not isinstance(text, str) or not _DATE_PATTERN.fullmatch(text):
            raise InvalidValue(field, "a date is written YYYY-MM-DD")
        try:
            day = datetime.date.fromisoformat(text)
        except ValueError:
            raise InvalidValue(field, f"{text} is not a calendar date") from None
    if not (EARLIEST_YEAR <= day.year <= LATEST_YEAR):
        raise InvalidValue(field, f"{day.isoformat()} is outside {EARLIEST_YEAR}-{LATEST_YEAR}")
    return day
