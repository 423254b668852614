"""The time, from one place: the system clock in production, a controllable one in tests."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _now(request: Request) -> datetime:
    clock: Clock = request.app.state.clock
    return clock()


NowDep = Annotated[datetime, Depends(_now)]
