"""Routes referrals from the outbox: committed first, then routed, retried until it succeeds.

A job is claimed by pushing its ``next_attempt_at`` past a lease (with ``FOR UPDATE SKIP LOCKED``
on PostgreSQL, so replicas never claim the same job; SQLite has a single writer). Work happens
outside the claim's transaction; if the process dies mid-job the lease lapses and the job runs
again. Each step is idempotent: a triaged referral is not triaged twice, and teams returns the
existing assignment for a repeated request.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.shared.db import utcnow
from services.shared.problems import UpstreamUnavailable
from services.shared.vocabulary import ReferralStatus as S
from services.spa.referrals import service
from services.spa.referrals.clients import RoutingClient, TeamsClient
from services.spa.referrals.models import OutboxJob, Referral

log = structlog.get_logger(__name__)

ACTOR = "spa-router"
MAX_BACKOFF_SECONDS = 300.0


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with full jitter, capped: an accepted referral is retried for ever."""
    ceiling = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** min(attempts, 16))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security


class RoutingWorker:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        routing: RoutingClient,
        teams: TeamsClient,
        *,
        batch_size: int = 16,
        poll_interval: float = 1.0,
        lease_seconds: float = 60.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._routing = routing
        self._teams = teams
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._lease = timedelta(seconds=lease_seconds)
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """A job was committed: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                busy = await self.run_once()
            except Exception as exc:  # the loop must outlive any one failure
                log.error("outbox_cycle_failed", error_type=type(exc).__name__)
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll_interval)
                self._wake.clear()

    async def run_once(self) -> bool:
        """Claim and run the jobs that are due; True when there were any."""
        claimed = await self._claim()
        if claimed:
            await asyncio.gather(*(self._run_job(*job) for job in claimed))
        return bool(claimed)

    async def _claim(self) -> list[tuple[int, int, str | None]]:
        now = utcnow()
        async with self._sessionmaker() as session, session.begin():
            jobs = await session.scalars(
                select(OutboxJob)
                .where(OutboxJob.status == "pending", OutboxJob.next_attempt_at <= now)
                .order_by(OutboxJob.next_attempt_at, OutboxJob.id)
                .limit(self._batch_size)
                .with_for_update(skip_locked=True)
            )
            claimed = []
            for job in jobs:
                job.attempts += 1
                job.next_attempt_at = now + self._lease
                claimed.append((job.id, job.attempts, job.request_id))
            return claimed

    async def _run_job(self, job_id: int, attempts: int, request_id: str | None) -> None:
        # Each job runs in its own task, so binding here does not leak into other jobs.
        structlog.contextvars.bind_contextvars(
            request_id=request_id or f"job-{job_id}", service="spa"
        )
        try:
            await self._route(job_id)
        except UpstreamUnavailable as problem:
            await self._retry_later(
                job_id, attempts, problem.extensions.get("upstream", "upstream")
            )
        except Exception as exc:
            log.error("routing_job_failed", job_id=job_id, error_type=type(exc).__name__)
            await self._retry_later(job_id, attempts, type(exc).__name__)

    async def _retry_later(self, job_id: int, attempts: int, error: str) -> None:
        delay = backoff_seconds(attempts)
        async with self._sessionmaker() as session, session.begin():
            job = await session.get(OutboxJob, job_id)
            if job is not None and job.status == "pending":
                job.next_attempt_at = utcnow() + timedelta(seconds=delay)
                job.last_error = str(error)[:64]
        log.warning(
            "routing_deferred",
            job_id=job_id,
            attempts=attempts,
            retry_in_s=round(delay, 2),
            error=error,
        )

    async def _route(self, job_id: int) -> None:
        async with self._sessionmaker() as session:
            job = await session.get(OutboxJob, job_id)
            if job is None or job.status != "pending":
                return
            referral = await session.get(Referral, job.referral_id)
            assert referral is not None
            if referral.status == S.RECEIVED:
                decision = await self._routing.decide(service.decision_request(referral))
                service.apply_decision(session, referral, decision, ACTOR)
                await session.commit()
            if referral.status == S.TRIAGED:
                made = []
                for kind, team in service.assignments_wanted(referral):
                    assignment = await self._teams.assign(
                        service.assignment_request(referral, kind, team)
                    )
                    made.append((kind, team, assignment))
                service.apply_assignments(session, referral, made, ACTOR)
            job.status = "done"
            job.last_error = None
            await session.commit()
            log.info(
                "referral_routed",
                referral_id=str(referral.id),
                status=referral.status,
                pathway=referral.pathway,
            )
