"""The heartbeats of spa's workers (``services.shared.heartbeats``)."""

from services.shared.heartbeats import HeartbeatColumns
from services.spa.base import Base

# The worker kinds a process with its background workers on runs, as its heartbeats name them.
WORKER_KINDS = ("routing", "timers", "webhook-dispatcher", "webhook-deliverer")


class WorkerHeartbeat(HeartbeatColumns, Base):
    """The last beat of one worker in one process."""
