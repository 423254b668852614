"""Routing a referral from the outbox: ask routing for a decision, then teams for assignments.

Each step is idempotent: a triaged referral is not triaged again on a retry, and teams returns
the existing assignment for a repeated request, so a referral is assigned exactly once.
"""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.shared.vocabulary import ReferralStatus as S
from services.spa.referrals import lifecycle, service
from services.spa.referrals.clients import RoutingClient, TeamsClient, UpstreamRefused
from services.spa.referrals.models import OutboxJob, Referral

log = structlog.get_logger(__name__)

ACTOR = "spa-router"


class ReferralRouter:
    """The outbox handler for ``route`` jobs."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        routing: RoutingClient,
        teams: TeamsClient,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._routing = routing
        self._teams = teams

    async def __call__(self, job_id: int) -> None:
        try:
            await self._route(job_id)
        except UpstreamRefused as refusal:
            await self._hand_to_people(job_id, refusal)

    async def _hand_to_people(self, job_id: int, refusal: UpstreamRefused) -> None:
        """A refusal no retry can fix: stop trying and put the case where handlers see it."""
        async with self._sessionmaker() as session:
            job = await session.get(OutboxJob, job_id)
            referral = await session.get(Referral, job.referral_id) if job else None
            if job is None or referral is None:
                return
            job.status = "failed"
            job.last_error = f"{refusal.service}_refused_{refusal.status}"
            detail = {"reason": f"{refusal.service}_refused", "status": refusal.status}
            if lifecycle.can_transition(S(referral.status), S.AWAITING_ASSESSMENT):
                session.add(
                    lifecycle.transition(
                        referral, S.AWAITING_ASSESSMENT, actor=ACTOR, detail=detail
                    )
                )
            await session.commit()
        log.error("routing_refused", job_id=job_id, upstream=refusal.service, status=refusal.status)

    async def _route(self, job_id: int) -> None:
        # No transaction is held open across a call to another service: each read ends before
        # the call, and each write is a short transaction of its own.
        async with self._sessionmaker() as session:
            job = await session.get(OutboxJob, job_id)
            if job is None or job.status != "pending":
                return
            referral = await session.get(Referral, job.referral_id)
            assert referral is not None
            await session.commit()
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
