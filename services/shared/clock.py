"""The time, from one place: the system clock in production, a controllable one in tests."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from pydantic import AfterValidator, AwareDatetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


# Dependencies are coroutines even when they do not wait: FastAPI runs a plain function in a
# worker thread, and the hand-off costs far more than reading a clock.
async def _now(request: Request) -> datetime:
    clock: Clock = request.app.state.clock
    return clock()


NowDep = Annotated[datetime, Depends(_now)]


def _plausible(value: datetime) -> datetime:
    # Far-off years are mistakes, and near the ends of the calendar converting between time
    # zones overflows: keep times within this century and the next.
    if not 2000 <= value.astimezone(UTC).year <= 2199:
        raise ValueError("the time must be between the years 2000 and 2199")
    return value


Moment = Annotated[AwareDatetime, AfterValidator(_plausible)]
