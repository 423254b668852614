"""The time, from one place: the system clock in production, a controllable one in tests.

Every time a service stores, compares or signs comes from the clock its app was built with
(``create_app(settings, clock=...)``). Nothing else in the code reads the wall clock: a test
in the suite fails on any ``datetime.now()``, ``date.today()`` or ``time.time()`` outside
this module. The clock reaches:

- request handlers, through ``NowDep``;
- workers and command lines, as an argument;
- column defaults (``created_at`` and the like), through the engine: ``create_engine`` binds
  the clock to its connections and ``clock_default`` reads it back at insert and update time.
  An engine built without a clock refuses to fill a time in, rather than guess one.
"""

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import AfterValidator, AwareDatetime, BeforeValidator

from services.shared.state import ServiceState, state_of

Clock = Callable[[], datetime]

# The execution option under which an engine carries its clock.
CLOCK_OPTION = "spa_clock"


def system_clock() -> datetime:
    """The machine's clock, in UTC: what a service runs on outside the tests."""
    return datetime.now(UTC)


def epoch_seconds(clock: Clock) -> float:
    """The clock's time in seconds since 1970, as JWT claims count it."""
    return clock().timestamp()


def system_epoch_seconds() -> float:
    """The machine's clock in seconds since 1970, only for comparing with the timestamps a
    library keeps by that clock itself (a rate limiter's window), never for our own data."""
    return datetime.now(UTC).timestamp()


def clock_default(context: Any) -> datetime:
    """A column default: the time from the clock bound to the engine doing the insert."""
    clock: Clock | None = context.execution_options.get(CLOCK_OPTION)
    if clock is None:
        raise RuntimeError("this engine has no clock: build it with create_engine(clock=...)")
    return clock()


# Dependencies are coroutines even when they do not wait: FastAPI runs a plain function in a
# worker thread, and the hand-off costs far more than reading a clock.
async def _now(request: Request) -> datetime:
    clock = state_of(request.app, ServiceState).clock
    return clock()


NowDep = Annotated[datetime, Depends(_now)]


def _plausible(value: datetime) -> datetime:
    # Far-off years are mistakes, and near the ends of the calendar converting between time
    # zones overflows: keep times within this century and the next.
    if not 2000 <= value.astimezone(UTC).year <= 2199:
        raise ValueError("the time must be between the years 2000 and 2199")
    return value


Moment = Annotated[AwareDatetime, AfterValidator(_plausible)]


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _written_as_date(value: object) -> object:
    # Left to itself, a date field also takes a date-time at midnight, or a number of seconds
    # since 1970: a client sending either has mistaken the field, and is told so.
    if isinstance(value, datetime) or not (
        isinstance(value, date) or (isinstance(value, str) and _ISO_DATE.fullmatch(value))
    ):
        raise ValueError("a date must be written YYYY-MM-DD, with no time")
    return value


CalendarDate = Annotated[date, BeforeValidator(_written_as_date)]
"""A calendar date, written ``YYYY-MM-DD`` and nothing else."""
