"""Waiting for a referral's routing outcome, for clients that ask to (``Prefer: wait=N``).

A request waits on an in-process signal raised when this replica routes the referral or applies
a team's change to it, and re-reads the status at a short interval as well, so that an outcome
reached by another replica is seen too.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable

from services.shared.vocabulary import ReferralStatus as S

# Statuses that still await the automatic routing; any other is an outcome worth answering with.
IN_FLIGHT = frozenset({S.RECEIVED, S.TRIAGED})
_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*\"?(\d{1,6})\"?", re.IGNORECASE)


def preferred_wait(prefer: str | None, ceiling: int) -> int | None:
    """The seconds asked for in a Prefer header (RFC 7240), capped; None when not asked.
    A malformed preference is ignored, as the RFC asks."""
    if not prefer:
        return None
    match = _WAIT.search(prefer)
    if match is None:
        return None
    return min(int(match.group(1)), ceiling)


class StatusWatch:
    def __init__(self, poll_interval: float = 0.25) -> None:
        self._waiters: dict[uuid.UUID, set[asyncio.Event]] = defaultdict(set)
        self._poll_interval = poll_interval

    def changed(self, referral_id: uuid.UUID) -> None:
        for event in self._waiters.get(referral_id, ()):
            event.set()

    async def wait(
        self,
        referral_id: uuid.UUID,
        seconds: float,
        current_status: Callable[[], Awaitable[str]],
    ) -> str:
        """Wait until the referral has an outcome or the time is up; its status then."""
        event = asyncio.Event()
        self._waiters[referral_id].add(event)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        try:
            while True:
                status = await current_status()
                remaining = deadline - loop.time()
                if status not in IN_FLIGHT or remaining <= 0:
                    return status
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        event.wait(), timeout=min(self._poll_interval, remaining)
                    )
                event.clear()
        finally:
            waiters = self._waiters[referral_id]
            waiters.discard(event)
            if not waiters:
                del self._waiters[referral_id]
