"""Query parameters shared by the read endpoints: dates, known_at, scope, paging, format."""

from __future__ import annotations

import datetime
from typing import Annotated, Literal

from fastapi import Query

from domain.errors import InvalidValue
from domain.period import parse_date

MAX_PAGE_SIZE = 1000

ScopeParam = Annotated[
    Literal["self", "subtree"],
    Query(description="self: this organisation; subtree: it and every organisation below it"),
]
FormatParam = Annotated[Literal["json", "csv", "xlsx"], Query(description="json, csv or xlsx")]
PageParam = Annotated[int, Query(ge=1, le=1_000_000, description="from 1")]
PageSizeParam = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
DayParam = Annotated[
    str | None, Query(max_length=10, description="YYYY-MM-DD", examples=["2024-06-30"])
]
KnownAtParam = Annotated[
    str | None,
    Query(
        max_length=40,
        description="RFC 3339 timestamp with offset: only what had been recorded by then counts",
        examples=["2024-07-01T09:00:00+08:00"],
    ),
]


def day_or_today(text: str | None, field: str) -> datetime.date:
    return datetime.date.today() if text is None else parse_date(text, field=field)


def parse_known_at(text: str | None) -> datetime.datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidValue(
            "known_at", "an RFC 3339 timestamp such as 2024-07-01T09:00:00+08:00"
        ) from None
    if "T" not in text.upper() or moment.tzinfo is None:
        raise InvalidValue("known_at", "a timestamp with a date, a time and an offset")
    return moment


def period(date_from: str | None, date_to: str | None) -> tuple[datetime.date, datetime.date]:
    """from/to, defaulting to the year so far."""
    today = datetime.date.today()
    start = (
        datetime.date(today.year, 1, 1)
        if date_from is None
        else parse_date(date_from, field="from")
    )
    end = today if date_to is None else parse_date(date_to, field="to")
    if start > end:
        raise InvalidValue("from", "from is on or before to")
    return start, end
