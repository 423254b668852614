"""England's working calendar: UK local time and the bank holidays of England."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

LOCAL = ZoneInfo("Europe/London")


@lru_cache(maxsize=64)
def _bank_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year))


def is_bank_holiday(day: date) -> bool:
    return day in _bank_holidays(day.year)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and not is_bank_holiday(day)


def add_working_days(start: datetime, days: int) -> datetime:
    """The same UK local time on the ``days``-th working day after ``start``'s own day."""
    local = start.astimezone(LOCAL)
    day = local.date()
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_working_day(day):
            counted += 1
    moment = datetime.combine(day, local.time(), tzinfo=LOCAL)
    return moment.astimezone(start.tzinfo)
