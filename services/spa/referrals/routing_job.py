"""The steps of spa's outbox jobs: route a referral, hold it for a call handler or close it as
the rules refuse it, escalate it to the CRU, or withdraw it from a team's caseload once the
referrer has cancelled it.

Each step is idempotent: a triaged referral is not triaged again on a retry, and teams returns
the existing assignment for a repeated request, so a referral is assigned exactly once. Jobs of
one referral run one at a time, oldest first, so a cancellation's withdrawal always follows the
routing it undoes.
"""

from __future__ import annotations

import contextlib

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.shared.batching import serving
from services.shared.clock import Clock
from services.shared.outbox import GiveUp, RetryLater, Steps, job_request_id
from services.shared.vocabulary import AssignmentKind, AssignmentStatus, Escalation
from services.shared.vocabulary import ReferralStatus as S
from services.spa.referrals import clocks, lifecycle, placement, service
from services.spa.referrals.clients import (
    Assignment,
    Decision,
    RoutingClient,
    TeamRef,
    TeamsClient,
    UpstreamRefused,
)
from services.spa.referrals.clocks import ClockPolicy
from services.spa.referrals.models import OutboxJob, Referral, ReferralAssignment
from services.spa.referrals.service import QueueReason

log = structlog.get_logger(__name__)

ACTOR = "spa-router"
# Where a route job refused for good leaves the case: with the locality's call handlers.
HANDED_TO_PEOPLE = (S.RECEIVED, S.TRIAGED, S.AWAITING_ASSESSMENT)
# What teams answers for a case its team already let go (it is being routed again).
LET_GO = (AssignmentStatus.WITHDRAWN, AssignmentStatus.DECLINED)


class NoSafeguardingTeam(RetryLater):
    """The directory names no CRU for the patient: retried until it does, never dropped."""

    def __init__(self) -> None:
        super().__init__("no_safeguarding_team")


def referral_jobs(
    sessionmaker: async_sessionmaker[AsyncSession],
    router: ReferralRouter,
    on_change: service.ChangeListener | None = None,
) -> Steps[OutboxJob]:
    """spa's outbox: each job kind's step; a job given up hands its case to people; waiters
    for the referral (``Prefer: wait``) hear of every finished job."""

    def changed(job: OutboxJob) -> None:
        if on_change is not None:
            on_change(job.referral_id)

    return Steps(
        sessionmaker,
        OutboxJob,
        {
            service.ROUTE_JOB: router.route,
            service.ESCALATE_JOB: router.escalate,
            service.WITHDRAW_JOB: router.withdraw,
        },
        on_give_up=router.hand_to_people,
        after_commit=changed,
        batched={service.ROUTE_JOB: router.route_batch},
    )


class ReferralRouter:
    """The steps of spa's outbox jobs. No transaction is held open across a call to another
    service: each read ends before the call, and each write is a short transaction of its own
    (the last one, which ends the step, also marks the job done)."""

    def __init__(
        self, routing: RoutingClient, teams: TeamsClient, policy: ClockPolicy, clock: Clock
    ) -> None:
        self._routing = routing
        self._teams = teams
        self._policy = policy
        self._clock = clock

    async def route(self, session: AsyncSession, job: OutboxJob) -> None:
        await self._route(session, await _referral(session, job))

    async def route_batch(self, session: AsyncSession, jobs: list[OutboxJob]) -> set[int]:
        """Route many new referrals at once: one read, one decision request for them all, one
        write of the decisions, one assignment request, one write of the assignments, and the
        last write (which the worker commits with the jobs done). Only the common case is done
        here: a new referral that nobody holds yet, triaged to teams that take it. Any other
        (held or refused by the rules, a team that has let the case go, no locality for the
        queue, an item another service could not answer) is left to ``route``, which does it
        alone, from where this left it; so is every job of a batch that fails. Each case's
        writes carry its own request id, as they would alone."""
        referrals = await _fresh_referrals(session, jobs)
        await session.commit()
        if not referrals:
            return set()
        with serving("routing.decisions", [job.request_id for job, _ in referrals]):
            decisions = await self._routing.decide_many(
                [placement.decision_request(referral) for _, referral in referrals]
            )
        triaged = []
        for (job, referral), decision in zip(referrals, decisions, strict=True):
            if decision is None or decision.hold is not None or decision.refuse is not None:
                continue
            with _for(job):
                placement.apply_decision(session, referral, decision, ACTOR)
            triaged.append((job, referral, placement.assignments_wanted(referral)))
        # The decisions are kept before teams is asked, as ``route`` keeps them.
        await session.commit()
        requests = [
            placement.assignment_request(
                referral, kind, team, self._policy.care_window(referral, kind)
            )
            for _, referral, wanted in triaged
            for kind, team in wanted
        ]
        with serving("teams.assignments", [job.request_id for job, _, _ in triaged]):
            assignments = iter(await self._teams.assign_many(requests) if requests else [])
        placed = []
        for job, referral, wanted in triaged:
            made = [(kind, team, next(assignments)) for kind, team in wanted]
            care_team = next((team for kind, team, _ in made if kind is AssignmentKind.CARE), None)
            target = placement.final_status(referral, care_team)
            if any(
                assignment is None or (kind is AssignmentKind.CARE and assignment.status in LET_GO)
                for kind, _, assignment in made
            ) or (target is S.AWAITING_ASSESSMENT and referral.locality_code is None):
                continue
            with _for(job):
                for kind, team, assignment in made:
                    assert assignment is not None
                    self._record(session, referral, kind, team, assignment, [])
            placed.append((job, referral, target, care_team))
        # Recorded at once, as ``route`` records each: a case a team holds is never unknown
        # here, even when the referral changes (a cancellation) before routing finishes.
        await session.commit()
        for job, referral, target, care_team in placed:
            with _for(job):
                if target is S.AWAITING_ASSESSMENT:
                    referral.queue_reason = placement.queue_reason_without_team(referral)
                placement.finish_routing(session, referral, target, care_team, ACTOR)
                if referral.status in (S.ROUTED, S.AWAITING_ASSESSMENT):
                    clocks.start_response_clock(session, self._policy, referral)
        return {job.id for job, _, _, _ in placed}

    async def escalate(self, session: AsyncSession, job: OutboxJob) -> None:
        await self._escalate(session, await _referral(session, job))

    async def withdraw(self, session: AsyncSession, job: OutboxJob) -> None:
        referral = await _referral(session, job)
        await self._teams.withdraw(referral.id, AssignmentKind.CARE, "referrer_cancelled")
        placement.mark_withdrawn(
            session,
            referral,
            await service.assignments_of(session, referral.id),
            "referrer_cancelled",
            ACTOR,
        )

    async def _route(self, session: AsyncSession, referral: Referral) -> None:
        if referral.status == S.RECEIVED and referral.queue_reason is not None:
            await self._hold(session, referral)
            return
        if _ready_for_triage(referral):
            decision = await self._routing.decide(placement.decision_request(referral))
            if decision.hold is not None or decision.refuse is not None:
                await self._keep_from_teams(session, referral, decision)
                return
            # Committed by the next transaction, before any other call: with the read of the
            # case's assignments if it goes on to a team, else with the job's end.
            placement.apply_decision(session, referral, decision, ACTOR)
        if referral.status == S.TRIAGED:
            await self._assign(session, referral)

    async def _assign(self, session: AsyncSession, referral: Referral) -> None:
        existing = await service.assignments_of(session, referral.id)
        await session.commit()
        care_team = None
        for kind, wanted in placement.assignments_wanted(referral):
            team = wanted
            window = self._policy.care_window(referral, kind)
            request = placement.assignment_request(referral, kind, team, window)
            assignment = await self._teams.assign(request)
            if kind is AssignmentKind.CARE and assignment.status in LET_GO:
                # The team already let this case go (it is being routed again after an
                # assessment): the next team the directory names, passing over those tried.
                tried = [row.team_id for row in existing if row.kind == AssignmentKind.CARE]
                offered = await placement.next_team(
                    self._teams, self._policy, referral, [*tried, wanted.id]
                )
                if offered is None:
                    continue
                team, assignment = offered
            # Recorded at once in its own transaction: a case a team holds is never unknown
            # here, even when the referral changes (a cancellation) before routing finishes.
            self._record(session, referral, kind, team, assignment, existing)
            await session.commit()
            if kind is AssignmentKind.CARE:
                care_team = team
        target = placement.final_status(referral, care_team)
        if target is S.AWAITING_ASSESSMENT:
            referral.locality_code = referral.locality_code or await self._locate(referral)
            referral.queue_reason = placement.queue_reason_without_team(referral)
        placement.finish_routing(session, referral, target, care_team, ACTOR)
        # A response clock starts at the first routing (to a team, or to the call handlers
        # when no team can take it, so that a case nobody claims is escalated); one routed
        # before may have one running.
        if referral.status in (S.ROUTED, S.AWAITING_ASSESSMENT) and (
            not existing or not await clocks.running(session, referral.id, clocks.RESPONSE_TIMERS)
        ):
            clocks.start_response_clock(session, self._policy, referral)

    def _record(
        self,
        session: AsyncSession,
        referral: Referral,
        kind: AssignmentKind,
        team: TeamRef,
        assignment: Assignment,
        existing: list[ReferralAssignment],
    ) -> None:
        """Record an assignment teams made and start its clock: the acceptance window of a
        care team, or the CRU's acknowledgement."""
        now = self._clock()
        if not placement.record_assignment(
            session, referral, kind, team, assignment, existing, ACTOR, at=now
        ):
            return
        if kind is AssignmentKind.SAFEGUARDING:
            clocks.start_safeguarding_clock(session, self._policy, referral, assignment.id, now)
        else:
            clocks.start_acceptance_window(session, self._policy, referral, assignment, now)

    async def _hold(self, session: AsyncSession, referral: Referral) -> None:
        """Put the case in its locality's call-handler queue; a safeguarding concern goes to the
        CRU by a job of its own, in parallel, rather than waiting for the handler."""
        referral.locality_code = await self._locate(referral)
        if referral.safeguarding.get("concern"):
            service.add_job(session, referral, service.ESCALATE_JOB)
        detail = {"queue_reason": referral.queue_reason, "locality_code": referral.locality_code}
        lifecycle.transition(session, referral, S.AWAITING_ASSESSMENT, actor=ACTOR, detail=detail)

    async def _keep_from_teams(
        self, session: AsyncSession, referral: Referral, decision: Decision
    ) -> None:
        """The rules hold the case for a call handler or refuse it: no team is asked for care,
        while a safeguarding concern still goes to the CRU, by a job of its own."""
        referral.locality_code = referral.locality_code or await self._locate(referral)
        if referral.safeguarding.get("concern"):
            service.add_job(session, referral, service.ESCALATE_JOB)
        if decision.refuse is not None:
            placement.refuse_by_decision(session, referral, decision, ACTOR)
        else:
            placement.hold_by_decision(session, referral, decision, ACTOR)

    async def _escalate(self, session: AsyncSession, referral: Referral) -> str | None:
        """Assign the case to the CRU; returns the patient's locality."""
        existing = await service.assignments_of(session, referral.id)
        await session.commit()
        place = placement.patient_place(referral)
        resolution = await self._teams.resolve_escalation(Escalation.SAFEGUARDING, **place)
        if resolution.team is None:
            raise NoSafeguardingTeam
        team = resolution.team
        assignment = await self._teams.assign(
            placement.assignment_request(referral, AssignmentKind.SAFEGUARDING, team)
        )
        self._record(session, referral, AssignmentKind.SAFEGUARDING, team, assignment, existing)
        return resolution.locality_code

    async def _try_locate(self, referral: Referral) -> str | None:
        """The locality if the directory answers now; the case must reach people regardless."""
        try:
            return await self._locate(referral)
        except (GiveUp, RetryLater):
            return None

    async def _locate(self, referral: Referral) -> str | None:
        return await self._teams.locate(**placement.patient_place(referral))

    async def hand_to_people(self, session: AsyncSession, job: OutboxJob, reason: GiveUp) -> None:
        """A job no retry can do: put the case where handlers see it."""
        referral = await session.get(Referral, job.referral_id)
        if referral is None:
            return
        detail: dict[str, object] = {"reason": reason.reason}
        if isinstance(reason, UpstreamRefused):
            detail = {"reason": f"{reason.service}_refused", "status": reason.status}
        if job.kind == service.ROUTE_JOB and referral.status in HANDED_TO_PEOPLE:
            referral.queue_reason = QueueReason.ROUTING_REFUSED
            referral.locality_code = referral.locality_code or await self._try_locate(referral)
            if referral.status != S.AWAITING_ASSESSMENT:
                lifecycle.transition(
                    session, referral, S.AWAITING_ASSESSMENT, actor=ACTOR, detail=detail
                )
        else:
            lifecycle.record_event(session, referral, "job_failed", actor=ACTOR, detail=detail)


async def _referral(session: AsyncSession, job: OutboxJob) -> Referral:
    """The job's referral, read in a transaction that ends at once (a step calls other
    services next)."""
    referral = await session.get(Referral, job.referral_id)
    assert referral is not None
    await session.commit()
    return referral


async def _fresh_referrals(
    session: AsyncSession, jobs: list[OutboxJob]
) -> list[tuple[OutboxJob, Referral]]:
    """The jobs whose referral is new (received, no reason yet to hold it for a call handler)
    and on no team's caseload, each with its referral."""
    ids = [job.referral_id for job in jobs]
    referrals = {
        referral.id: referral
        for referral in await session.scalars(select(Referral).where(Referral.id.in_(ids)))
    }
    held = set(
        await session.scalars(
            select(ReferralAssignment.referral_id).where(ReferralAssignment.referral_id.in_(ids))
        )
    )
    fresh = []
    for job in jobs:
        referral = referrals.get(job.referral_id)
        if (
            referral is not None
            and referral.status == S.RECEIVED
            and referral.queue_reason is None
            and referral.id not in held
        ):
            fresh.append((job, referral))
    return fresh


def _for(job: OutboxJob) -> contextlib.AbstractContextManager[None]:
    """The job's request id on what it writes and logs (events, clocks), as when it runs
    alone."""
    return structlog.contextvars.bound_contextvars(request_id=job_request_id(job))


def _ready_for_triage(referral: Referral) -> bool:
    """Received, or assessed by a call handler and released from the queue for routing."""
    if referral.status == S.RECEIVED:
        return True
    return (
        referral.status == S.AWAITING_ASSESSMENT
        and referral.queue_reason is None
        and referral.assessed_at is not None
    )
