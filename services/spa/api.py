"""Request dependencies that spa's routers share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.shared.state import state_of
from services.spa.state import SpaState
from services.spa.wakeups import Wakeups


def _wakeups(request: Request) -> Wakeups:
    return state_of(request.app, SpaState).wakeups


WakeupsDep = Annotated[Wakeups, Depends(_wakeups)]
