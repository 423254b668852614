"""The heartbeats of teams' worker (``services.shared.heartbeats``)."""

from services.shared.heartbeats import HeartbeatColumns
from services.teams.base import Base

WORKER_KINDS = ("assignment-reporter",)


class WorkerHeartbeat(HeartbeatColumns, Base):
    """The last beat of the reporter in one process."""
