"""Request dependencies that spa's routers share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.spa.wakeups import Wakeups


def _wakeups(request: Request) -> Wakeups:
    found: Wakeups = request.app.state.wakeups
    return found


WakeupsDep = Annotated[Wakeups, Depends(_wakeups)]
