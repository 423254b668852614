"""What teams keeps only for a while: the changes already reported to spa, and heartbeats
of workers long gone. Assignments,
caseloads, the directory and its history, and the audit trail are care and audit records."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_

from services.shared import heartbeats
from services.shared.outbox import JobStatus
from services.shared.retention import Rule
from services.teams.caseloads.models import OutboxJob
from services.teams.heartbeats import WorkerHeartbeat
from services.teams.settings import TeamsSettings


def rules(settings: TeamsSettings) -> list[Rule]:
    finished = timedelta(days=settings.retention_done_job_days)

    def reported(now: datetime) -> ColumnElement[bool]:
        return and_(OutboxJob.status == JobStatus.DONE, OutboxJob.updated_at < now - finished)

    return [
        Rule("outbox_jobs", OutboxJob, reported),
        Rule(
            "worker_heartbeats", WorkerHeartbeat, lambda now: heartbeats.gone(WorkerHeartbeat, now)
        ),
    ]
