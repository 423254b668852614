"""Reporting assignment changes to spa, from the outbox, one assignment's changes in order."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.shared.http import ServiceClient
from services.shared.problems import UpstreamUnavailable
from services.teams.models import Assignment, OutboxJob

log = structlog.get_logger(__name__)


class AssignmentReporter:
    """The outbox handler for ``report`` jobs."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], spa: ServiceClient) -> None:
        self._sessionmaker = sessionmaker
        self._spa = spa

    async def __call__(self, job_id: int) -> None:
        async with self._sessionmaker() as session:
            job = await session.get(OutboxJob, job_id)
            if job is None or job.status != "pending":
                return
            assignment = await session.get(Assignment, job.assignment_id)
            assert assignment is not None
            path = f"/v1/referrals/{assignment.referral_id}/assignment-updates"
            # End the read before calling spa: no transaction is held open across the call.
            await session.commit()
            response = await self._spa.request("POST", path, json=job.payload)
            if response.status_code in (404, 409):
                # 404: spa may not have committed the assignment it asked for yet; 409: an
                # earlier change has not reached it yet. Both settle on their own: try again.
                raise UpstreamUnavailable(
                    f"spa answered {response.status_code}; trying again.", upstream="spa"
                )
            if response.status_code not in (200, 201):
                # Refused for good: this job fails, and (the outbox keeps each assignment's
                # reports in order) holds back the later ones, so none applies out of order.
                log.error("assignment_update_refused", job_id=job_id, status=response.status_code)
                job.status = "failed"
                job.last_error = f"refused_{response.status_code}"
                await session.commit()
                return
            job.status = "done"
            await session.commit()
