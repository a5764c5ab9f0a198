"""Months (会计期间) and dates at the edges of the domain."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import InvalidValue
from domain.period import EARLIEST_YEAR, LATEST_YEAR, Month, parse_date

DAYS = st.dates(
    min_value=datetime.date(EARLIEST_YEAR, 1, 1), max_value=datetime.date(LATEST_YEAR, 12, 31)
)


def test_month_parses_and_formats() -> None:
    month = Month.parse("2024-02")
    assert month == Month(2024, 2)
    assert str(month) == "2024-02"
    assert str(Month(1949, 1)) == "1949-01"


@pytest.mark.parametrize(
    "text",
    [
        "2024-2",
        "2024-13",
        "2024-00",
        "24-02",
        "2024/02",
        "202402",
        "2024-02-01",
        " 2024-02",
        "2024-02\n",
        "1948-12",  # before the ledger's earliest year
        "2201-01",  # after its latest
        "２０２４-０２",  # full-width digits
        "",
    ],
)
def test_month_parse_rejects_anything_but_yyyy_mm(text: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        Month.parse(text, field="period")
    assert caught.value.field == "period"


@pytest.mark.parametrize("value", [202402, None, datetime.date(2024, 2, 1)])
def test_month_parse_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidValue):
        Month.parse(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("year", "month"), [(2024, 0), (2024, 13), (1948, 12), (2201, 1)])
def test_month_constructor_rejects_impossible_months(year: int, month: int) -> None:
    with pytest.raises(InvalidValue):
        Month(year, month)


@pytest.mark.parametrize(
    ("month", "first", "last"),
    [
        (Month(2024, 2), datetime.date(2024, 2, 1), datetime.date(2024, 2, 29)),
        (Month(2023, 2), datetime.date(2023, 2, 1), datetime.date(2023, 2, 28)),
        (Month(2100, 2), datetime.date(2100, 2, 1), datetime.date(2100, 2, 28)),
        (Month(2000, 2), datetime.date(2000, 2, 1), datetime.date(2000, 2, 29)),
        (Month(2024, 4), datetime.date(2024, 4, 1), datetime.date(2024, 4, 30)),
        (Month(2024, 12), datetime.date(2024, 12, 1), datetime.date(2024, 12, 31)),
    ],
)
def test_first_and_last_day(month: Month, first: datetime.date, last: datetime.date) -> None:
    assert month.first_day == first
    assert month.last_day == last


def test_contains_only_days_of_that_month_and_year() -> None:
    february = Month(2024, 2)
    assert february.contains(datetime.date(2024, 2, 1))
    assert february.contains(datetime.date(2024, 2, 29))
    assert not february.contains(datetime.date(2024, 1, 31))
    assert not february.contains(datetime.date(2024, 3, 1))
    assert not february.contains(datetime.date(2023, 2, 15))


def test_months_order_chronologically() -> None:
    assert Month(2023, 12) < Month(2024, 1) < Month(2024, 2) < Month(2025, 1)


@settings(deadline=None)
@given(DAYS)
def test_every_day_lies_in_its_month(day: datetime.date) -> None:
    month = Month.of(day)
    assert month.contains(day)
    assert month.first_day <= day <= month.last_day
    assert Month.parse(str(month)) == month
    assert (month.last_day + datetime.timedelta(days=1)).day == 1
    assert not month.contains(month.first_day - datetime.timedelta(days=1))
    assert not month.contains(month.last_day + datetime.timedelta(days=1))


def test_parse_date_accepts_real_dates_and_date_objects() -> None:
    assert parse_date("2024-02-29", field="effective_on") == datetime.date(2024, 2, 29)
    assert parse_date(datetime.date(2024, 3, 1), field="effective_on") == datetime.date(2024, 3, 1)


@pytest.mark.parametrize(
    "text",
    [
        "2023-02-29",  # not a leap year
        "1900-02-29",
        "2100-02-29",
        "2024-02-30",
        "2024-04-31",
        "2024-13-01",
        "2024-00-10",
        "2024-01-00",
        "2024-01-32",
        "2024-1-5",
        "20240105",
        "2024-01-05T00:00",
        "2024-01-05 ",
        "2024-01-05\n",
        "2024/01/05",
        "1948-12-31",
        "2201-01-01",
        "２０２４-０１-０５",
        "",
    ],
)
def test_parse_date_rejects_impossible_or_malformed_dates(text: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_date(text, field="joined_on")
    assert caught.value.field == "joined_on"


def test_parse_date_rejects_date_objects_outside_the_ledgers_years() -> None:
    with pytest.raises(InvalidValue):
        parse_date(datetime.date(1900, 1, 1), field="joined_on")


@settings(deadline=None)
@given(DAYS)
def test_parse_date_round_trips_every_day_in_range(day: datetime.date) -> None:
    assert parse_date(day.isoformat(), field="d") == day
