"""How the console writes figures and moments: amounts 1,234.50, dates YYYY-MM-DD, times in
Beijing time, and the known_at a browser's picker sends."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.errors import InvalidValue

CHINA = datetime.timezone(datetime.timedelta(hours=8), "Asia/Shanghai")


def money(value: Any) -> str:
    """A decimal string as 1,234.50 (-1,234.50 below zero); anything else as it is."""
    if value is None or value == "":
        return ""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return f"{number:,.2f}"


def day(value: Any) -> str:
    """YYYY-MM-DD of a date or of an RFC 3339 text (in Beijing time)."""
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return value.astimezone(CHINA).date().isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    text = str(value)
    if "T" in text:
        return moment(text)[:10]
    return text[:10]


def moment(value: Any) -> str:
    """YYYY-MM-DD HH:MM:SS in Beijing time, of a datetime or an RFC 3339 text."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(CHINA)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def known_at_param(text: str | None) -> str | None:
    """The known_at a form sent, as the API takes it: an RFC 3339 timestamp. A browser's
    datetime-local picker sends no offset ("2025-07-01T09:00"): that is Beijing time."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if len(text) > 40:
        raise InvalidValue("known_at", "a moment such as 2025-07-01T09:00")
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidValue("known_at", "a moment such as 2025-07-01T09:00") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=CHINA)
    return parsed.isoformat()


def picker_value(known_at: str | None) -> str:
    """The value a datetime-local picker shows for a known_at (Beijing time, to the second)."""
    if not known_at:
        return ""
    return datetime.datetime.fromisoformat(known_at).astimezone(CHINA).strftime("%Y-%m-%dT%H:%M:%S")


def pretty(value: Any) -> str:
    """JSON as people read it: indented, Chinese as it is."""
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)


def percent(value: Any) -> str:
    """A ratio ("0.8512") as 85.12%; "—" when there is none."""
    if value is None or value == "":
        return "—"
    try:
        return f"{Decimal(str(value)) * 100:.2f}%"
    except InvalidOperation:
        return str(value)
