"""The outbox handler: route a referral, hold it for a call handler, escalate it to the CRU, or
withdraw it from a team's caseload once the referrer has cancelled it.

Each step is idempotent: a triaged referral is not triaged again on a retry, and teams returns
the existing assignment for a repeated request, so a referral is assigned exactly once. Jobs of
one referral run one at a time, oldest first, so a cancellation's withdrawal always follows the
routing it undoes.
"""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.shared.identifiers import postcode_district
from services.shared.problems import UpstreamUnavailable
from services.shared.vocabulary import AssignmentKind, Escalation
from services.shared.vocabulary import ReferralStatus as S
from services.spa.referrals import lifecycle, service
from services.spa.referrals.clients import RoutingClient, TeamsClient, UpstreamRefused
from services.spa.referrals.models import OutboxJob, Referral
from services.spa.referrals.service import QueueReason

log = structlog.get_logger(__name__)

ACTOR = "spa-router"


class NoSafeguardingTeam(UpstreamUnavailable):
    """The directory names no CRU for the patient: retried until it does, never dropped."""


class ReferralRouter:
    """The handler of spa's outbox jobs."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        routing: RoutingClient,
        teams: TeamsClient,
        on_change: service.ChangeListener | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._routing = routing
        self._teams = teams
        self._on_change = on_change

    async def __call__(self, job_id: int) -> None:
        try:
            referral_id = await self._run(job_id)
        except UpstreamRefused as refusal:
            referral_id = await self._hand_to_people(job_id, refusal)
        if referral_id is not None and self._on_change is not None:
            self._on_change(referral_id)

    async def _run(self, job_id: int) -> uuid.UUID | None:
        # No transaction is held open across a call to another service: each read ends before
        # the call, and each write is a short transaction of its own.
        async with self._sessionmaker() as session:
            job = await session.get(OutboxJob, job_id)
            if job is None or job.status != "pending":
                return None
            referral = await session.get(Referral, job.referral_id)
            assert referral is not None
            await session.commit()
            if job.kind == service.WITHDRAW_JOB:
                await self._teams.withdraw(referral.id, AssignmentKind.CARE, "referrer_cancelled")
                service.mark_withdrawn(await service.assignments_of(session, referral.id))
            elif job.kind == service.ESCALATE_JOB:
                await self._escalate(session, referral)
            else:
                await self._route(session, referral)
            job.status = "done"
            job.last_error = None
            await session.commit()
            log.info("referral_job_done", referral_id=str(referral.id), kind=job.kind)
            return referral.id

    async def _route(self, session: AsyncSession, referral: Referral) -> None:
        if referral.status == S.RECEIVED and referral.queue_reason is not None:
            await self._hold(session, referral)
            return
        if _ready_for_triage(referral):
            decision = await self._routing.decide(service.decision_request(referral))
            service.apply_decision(session, referral, decision, ACTOR)
            await session.commit()
        if referral.status == S.TRIAGED:
            existing = await service.assignments_of(session, referral.id)
            await session.commit()
            made = []
            for kind, team in service.assignments_wanted(referral):
                assignment = await self._teams.assign(
                    service.assignment_request(referral, kind, team)
                )
                made.append((kind, team, assignment))
            service.apply_assignments(session, referral, made, existing, ACTOR)
            if referral.queue_reason is not None:
                referral.locality_code = await self._locate(referral)

    async def _hold(self, session: AsyncSession, referral: Referral) -> None:
        """Put the case in its locality's call-handler queue; a safeguarding concern goes to the
        CRU at once, in parallel, rather than waiting for the handler."""
        if referral.safeguarding.get("concern"):
            referral.locality_code = await self._escalate(session, referral)
        else:
            referral.locality_code = await self._locate(referral)
        detail = {"queue_reason": referral.queue_reason, "locality_code": referral.locality_code}
        session.add(
            lifecycle.transition(referral, S.AWAITING_ASSESSMENT, actor=ACTOR, detail=detail)
        )

    async def _escalate(self, session: AsyncSession, referral: Referral) -> str | None:
        """Assign the case to the CRU; returns the patient's locality."""
        existing = await service.assignments_of(session, referral.id)
        await session.commit()
        place = _place(referral)
        resolution = await self._teams.resolve_escalation(Escalation.SAFEGUARDING, **place)
        if resolution.team is None:
            raise NoSafeguardingTeam("The directory names no team for safeguarding escalations.")
        team = resolution.team
        assignment = await self._teams.assign(
            service.assignment_request(referral, AssignmentKind.SAFEGUARDING, team)
        )
        service.record_assignment(
            session, referral, AssignmentKind.SAFEGUARDING, team, assignment, existing, ACTOR
        )
        return resolution.locality_code

    async def _locate(self, referral: Referral) -> str | None:
        return await self._teams.locate(**_place(referral))

    async def _hand_to_people(self, job_id: int, refusal: UpstreamRefused) -> uuid.UUID | None:
        """A refusal no retry can fix: stop trying and put the case where handlers see it."""
        async with self._sessionmaker() as session:
            job = await session.get(OutboxJob, job_id)
            referral = await session.get(Referral, job.referral_id) if job else None
            if job is None or referral is None:
                return None
            job.status = "failed"
            job.last_error = f"{refusal.service}_refused_{refusal.status}"
            detail = {"reason": f"{refusal.service}_refused", "status": refusal.status}
            if job.kind == service.ROUTE_JOB and lifecycle.can_transition(
                S(referral.status), S.AWAITING_ASSESSMENT
            ):
                referral.queue_reason = QueueReason.ROUTING_REFUSED
                session.add(
                    lifecycle.transition(
                        referral, S.AWAITING_ASSESSMENT, actor=ACTOR, detail=detail
                    )
                )
            else:
                session.add(
                    lifecycle.record_event(referral, "job_failed", actor=ACTOR, detail=detail)
                )
            await session.commit()
        log.error(
            "referral_job_refused",
            job_id=job_id,
            kind=job.kind,
            upstream=refusal.service,
            status=refusal.status,
        )
        return referral.id


def _ready_for_triage(referral: Referral) -> bool:
    """Received, or assessed by a call handler and released from the queue for routing."""
    if referral.status == S.RECEIVED:
        return True
    return (
        referral.status == S.AWAITING_ASSESSMENT
        and referral.queue_reason is None
        and referral.assessed_at is not None
    )


def _place(referral: Referral) -> dict[str, str | None]:
    district = postcode_district(referral.postcode) if referral.postcode else None
    return {"practice": referral.registered_practice, "district": district}
