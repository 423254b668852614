"""What a response clock does when its timer fires.

- acceptance window lapsed, or the team declined: offer the case to the next team (the
  directory passes over every team already tried) and withdraw it from the first;
- at risk: an ``sla_at_risk`` event;
- deadline passed: ``sla_breached``, and the case goes on the locality coordinator's list;
- safeguarding acknowledgement overdue: ``sla_breached`` for that clock, likewise escalated.

Each timer re-reads the referral when it fires and does nothing if its clock has stopped.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.shared.clock import Clock
from services.shared.vocabulary import AssignmentKind, Pathway
from services.shared.vocabulary import ReferralStatus as S
from services.spa.referrals import clocks, lifecycle, service
from services.spa.referrals.clients import TeamRef, TeamsClient
from services.spa.referrals.clocks import ClockPolicy, TimerKind
from services.spa.referrals.models import Referral, ReferralAssignment, ReferralTimer
from services.spa.referrals.service import QueueReason

log = structlog.get_logger(__name__)

ACTOR = "spa-clock"
OPEN_CARE = (S.ROUTED, S.REROUTED, S.ACCEPTED, S.DECLINED)


class ClockKeeper:
    """The handler of spa's timers."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        teams: TeamsClient,
        policy: ClockPolicy,
        clock: Clock,
        on_change: service.ChangeListener | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._teams = teams
        self._policy = policy
        self._clock = clock
        self._on_change = on_change

    async def __call__(self, timer_id: int) -> None:
        async with self._sessionmaker() as session:
            timer = await session.get(ReferralTimer, timer_id)
            if timer is None or timer.status != "pending":
                return
            referral = await session.get(Referral, timer.referral_id)
            assert referral is not None
            assignment = await _assignment(session, timer.assignment_id)
            await session.commit()
            fired = await self._fire(session, TimerKind(timer.kind), referral, assignment)
            timer.status = "done"
            timer.last_error = None
            await session.commit()
        log.info("timer_fired", timer_id=timer_id, kind=timer.kind, acted=fired)
        if fired and self._on_change is not None:
            self._on_change(referral.id)

    async def _fire(
        self,
        session: AsyncSession,
        kind: TimerKind,
        referral: Referral,
        assignment: ReferralAssignment | None,
    ) -> bool:
        if kind in (TimerKind.ACCEPTANCE_WINDOW, TimerKind.REROUTE):
            wanted_status = "assigned" if kind is TimerKind.ACCEPTANCE_WINDOW else "declined"
            if assignment is None or assignment.status != wanted_status:
                return False
            if referral.status not in (S.ROUTED, S.REROUTED, S.DECLINED):
                return False
            return await self._reroute(session, referral, assignment, kind)
        if kind is TimerKind.SAFEGUARDING_ACKNOWLEDGEMENT:
            if assignment is None or assignment.status != "assigned":
                return False
            return await self._breach(session, referral, "safeguarding_acknowledgement")
        if referral.status not in OPEN_CARE or await _first_contact_made(session, referral):
            return False
        if kind is TimerKind.AT_RISK:
            detail = {"clock": "response", "due_at": _deadline(referral)}
            session.add(lifecycle.record_event(referral, "sla_at_risk", actor=ACTOR, detail=detail))
            return True
        return await self._breach(session, referral, "response")

    async def _breach(self, session: AsyncSession, referral: Referral, clock: str) -> bool:
        """Record the breach and put the case on its locality coordinator's list."""
        if referral.locality_code is None:
            referral.locality_code = await self._teams.locate(**service.patient_place(referral))
        referral.escalated_at = referral.escalated_at or self._clock()
        detail = {"clock": clock, "locality_code": referral.locality_code}
        session.add(lifecycle.record_event(referral, "sla_breached", actor=ACTOR, detail=detail))
        return True

    async def _reroute(
        self,
        session: AsyncSession,
        referral: Referral,
        assignment: ReferralAssignment,
        kind: TimerKind,
    ) -> bool:
        reason = "acceptance_window_lapsed" if kind is TimerKind.ACCEPTANCE_WINDOW else "declined"
        if kind is TimerKind.ACCEPTANCE_WINDOW:
            if not await self._teams.take_back(assignment.assignment_id, reason):
                return False  # the team accepted first; its acceptance is on its way
            assignment.status = "withdrawn"
        existing = await service.assignments_of(session, referral.id)
        tried = [row.team_id for row in existing if row.kind == AssignmentKind.CARE]
        await session.commit()
        assert referral.pathway is not None
        resolution = await self._teams.resolve_pathway(
            Pathway(referral.pathway), exclude=tried, **service.patient_place(referral)
        )
        detail: dict[str, object] = {"reason": reason, "from_team_id": str(assignment.team_id)}
        team = resolution.team
        if team is None or team.id in tried:
            referral.queue_reason = QueueReason.NO_TEAM
            referral.locality_code = referral.locality_code or resolution.locality_code
            session.add(
                lifecycle.transition(referral, S.AWAITING_ASSESSMENT, actor=ACTOR, detail=detail)
            )
            return True
        await self._assign(session, referral, team, existing, detail)
        return True

    async def _assign(
        self,
        session: AsyncSession,
        referral: Referral,
        team: TeamRef,
        existing: list[ReferralAssignment],
        detail: dict[str, object],
    ) -> None:
        request = service.assignment_request(referral, AssignmentKind.CARE, team)
        made = await self._teams.assign(request)
        now = self._clock()
        service.record_assignment(
            session, referral, AssignmentKind.CARE, team, made, existing, ACTOR, at=now
        )
        detail["to_team_id"] = str(team.id)
        session.add(lifecycle.transition(referral, S.REROUTED, actor=ACTOR, detail=detail))
        clocks.start_acceptance_window(session, self._policy, referral, made.id, now)


async def _assignment(
    session: AsyncSession, assignment_id: uuid.UUID | None
) -> ReferralAssignment | None:
    if assignment_id is None:
        return None
    return await session.scalar(
        select(ReferralAssignment).where(ReferralAssignment.assignment_id == assignment_id)
    )


async def _first_contact_made(session: AsyncSession, referral: Referral) -> bool:
    found = await session.scalar(
        select(ReferralAssignment.id).where(
            ReferralAssignment.referral_id == referral.id,
            ReferralAssignment.kind == AssignmentKind.CARE,
            ReferralAssignment.first_contact_at.is_not(None),
        )
    )
    return found is not None


def _deadline(referral: Referral) -> str | None:
    if referral.response_target_seconds is None:
        return None
    due: datetime = referral.received_at + timedelta(seconds=referral.response_target_seconds)
    return due.isoformat()
