"""Weekly service hours, with England's bank holidays, in local (UK) time.

Hours are written as ranges within a day, ``"08:00-20:00"``; a service open overnight lists two
ranges (``"00:00-08:00"`` and ``"18:30-24:00"``). Bank holidays have their own ranges (closed when
none are given). A team with no hours at all is always open.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.shared.calendar import LOCAL, is_bank_holiday

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")

TimeRange = tuple[time, time | None]  # an end of None means midnight at the end of the day
# How far ahead to look for opening hours: hours open only on bank holidays open within a year.
_SEARCH_DAYS = 800


def parse_range(text: str) -> TimeRange:
    match = _RANGE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a range like 08:00-20:00")
    start = time(int(match.group(1)), int(match.group(2)))
    end_hour, end_minute = int(match.group(3)), int(match.group(4))
    if end_hour == 24 and end_minute:
        raise ValueError(f"{text!r} ends after midnight")
    end = None if end_hour == 24 else time(end_hour, end_minute)
    if end is not None and end <= start:
        raise ValueError(f"{text!r} ends before it starts; split an overnight range in two")
    return start, end


class ServiceHours(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mon: list[str] = Field(default_factory=list)
    tue: list[str] = Field(default_factory=list)
    wed: list[str] = Field(default_factory=list)
    thu: list[str] = Field(default_factory=list)
    fri: list[str] = Field(default_factory=list)
    sat: list[str] = Field(default_factory=list)
    sun: list[str] = Field(default_factory=list)
    bank_holidays: list[str] = Field(default_factory=list)

    @field_validator("*")
    @classmethod
    def _well_formed(cls, ranges: list[str]) -> list[str]:
        parsed = sorted((parse_range(text) for text in ranges), key=lambda bounds: bounds[0])
        for (_, end), (start, _) in itertools.pairwise(parsed):
            if end is None or start < end:
                raise ValueError("ranges overlap")
        return ranges

    @model_validator(mode="after")
    def _open_some_time(self) -> Self:
        if not any(getattr(self, day) for day in (*DAYS, "bank_holidays")):
            raise ValueError(
                "hours that are never open: leave hours out for a team that is always open"
            )
        return self

    def ranges_on(self, day: date) -> list[str]:
        if is_bank_holiday(day):
            return self.bank_holidays
        ranges: list[str] = getattr(self, DAYS[day.weekday()])
        return ranges

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(LOCAL)
        clock = local.time().replace(tzinfo=None)
        for text in self.ranges_on(local.date()):
            start, end = parse_range(text)
            if start <= clock and (end is None or clock < end):
                return True
        return False

    def open_periods(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The periods the team is open from ``start`` on, in order, as UTC instants (a period
        open at ``start`` begins there)."""
        first = start.astimezone(LOCAL).date()
        for offset in range(_SEARCH_DAYS):
            day = first + timedelta(days=offset)
            for begin, end in sorted(map(parse_range, self.ranges_on(day)), key=lambda r: r[0]):
                opens = _instant(day, begin)
                closes = (
                    _instant(day + timedelta(days=1), time()) if end is None else _instant(day, end)
                )
                if closes > start:
                    yield max(opens, start), closes


def _instant(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=LOCAL).astimezone(UTC)


def is_open(hours: dict[str, list[str]] | None, at: datetime) -> bool:
    """Whether a team with these stored hours is open at ``at`` (always, when it has none)."""
    if hours is None:
        return True
    return ServiceHours.model_validate(hours).is_open(at)


def open_time_ends(
    hours: dict[str, list[str]] | None, start: datetime, duration: timedelta
) -> datetime:
    """When a team has been open for ``duration`` counted from ``start``: a clock that runs
    only in the team's service hours (all the time, when it has none)."""
    if hours is None:
        return start + duration
    remaining = duration
    for opens, closes in ServiceHours.model_validate(hours).open_periods(start):
        if remaining <= closes - opens:
            return opens + remaining
        remaining -= closes - opens
    return start + duration  # hours open so rarely that the search gives up: count every hour


def next_opening(hours: dict[str, list[str]] | None, at: datetime) -> datetime:
    """When a team is next open: ``at`` itself if it is open then."""
    return open_time_ends(hours, at, timedelta())


def local_description(at: datetime) -> str:
    """A moment as a person in England reads it: "Monday 30 November at 08:30"."""
    local = at.astimezone(LOCAL)
    return f"{local:%A} {local.day} {local:%B} at {local:%H:%M}"
