"""Reporting assignment changes to spa, from the outbox, one assignment's changes in order."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.shared.http import ServiceClient, outage_is_retry
from services.shared.outbox import GiveUp, RetryLater, Steps
from services.teams.caseloads.models import Assignment, OutboxJob
from services.teams.caseloads.service import REPORT_JOB


def report_jobs(
    sessionmaker: async_sessionmaker[AsyncSession], spa: ServiceClient
) -> Steps[OutboxJob]:
    """teams' outbox: its one kind of job reports a change of an assignment to spa."""
    return Steps(sessionmaker, OutboxJob, {REPORT_JOB: AssignmentReporter(spa).report})


class AssignmentReporter:
    def __init__(self, spa: ServiceClient) -> None:
        self._spa = spa

    async def report(self, session: AsyncSession, job: OutboxJob) -> None:
        assignment = await session.get(Assignment, job.assignment_id)
        assert assignment is not None
        path = f"/v1/referrals/{assignment.referral_id}/assignment-updates"
        # End the read before calling spa: no transaction is held open across the call.
        await session.commit()
        with outage_is_retry():
            response = await self._spa.request("POST", path, json=job.payload)
        if response.status_code in (404, 409):
            # 404: spa may not have committed the assignment it asked for yet; 409: an earlier
            # change has not reached it yet. Both settle on their own: try again.
            raise RetryLater(f"spa_answered_{response.status_code}")
        if response.status_code not in (200, 201):
            # Refused for good: this job fails, and (the outbox keeps each assignment's reports
            # in order) holds back the later ones, so none applies out of order.
            raise GiveUp(f"refused_{response.status_code}")
