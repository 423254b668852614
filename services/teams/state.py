"""teams' state for its lifetime (see ``services.shared.state``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.shared.state import ServiceState

if TYPE_CHECKING:
    from services.shared.outbox import OutboxWorker
    from services.shared.wake_listener import WakeListener
    from services.teams.settings import TeamsSettings


class TeamsState(ServiceState):
    settings: TeamsSettings
    # The reporting worker, in the process that runs it.
    worker: OutboxWorker
    wake_listener: WakeListener | None
