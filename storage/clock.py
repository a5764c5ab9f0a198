"""The service's clock: instants in UTC, and today's date as it is in China.

Rules that speak of "today" (a token's scope is decided on the tree as it stands today) mean the
date in Asia/Shanghai, whatever the server's own time zone. China has kept UTC+8 without daylight
saving since 1991, so a fixed offset is exact and needs no time-zone database.
"""

from __future__ import annotations

import datetime

CHINA = datetime.timezone(datetime.timedelta(hours=8), "Asia/Shanghai")


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def today_in_china(moment: datetime.datetime | None = None) -> datetime.date:
    return (moment or now()).astimezone(CHINA).date()
