"""What a response clock does when its timer fires.

- acceptance window lapsed, the team declined, or a locality coordinator sent the case on (a
  re-route due at once): offer the case to the next team (the directory passes over every team
  already tried) and withdraw it from the first;
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
from services.shared.outbox import Steps
from services.shared.vocabulary import AssignmentKind
from services.shared.vocabulary import AssignmentStatus as A
from services.shared.vocabulary import ReferralStatus as S
from services.spa.referrals import clocks, lifecycle, placement, service
from services.spa.referrals.clients import Assignment, TeamsClient
from services.spa.referrals.clocks import ClockPolicy, TimerKind
from services.spa.referrals.models import Referral, ReferralAssignment, ReferralTimer
from services.spa.referrals.service import QueueReason

log = structlog.get_logger(__name__)

ACTOR = "spa-clock"
# Why a case a team still held went on: a locality coordinator sent it (see rerouting.py).
COORDINATOR_REROUTE = "sent_on_by_coordinator"
# Statuses in which the response clock runs: with a team, or with the locality's handlers
# after every team let the case go.
OPEN_CARE = (S.ROUTED, S.REROUTED, S.ACCEPTED, S.DECLINED, S.AWAITING_ASSESSMENT)


def timer_jobs(
    sessionmaker: async_sessionmaker[AsyncSession],
    keeper: ClockKeeper,
    on_change: service.ChangeListener | None = None,
) -> Steps[ReferralTimer]:
    """spa's timers: every kind fires through ``ClockKeeper.fire``."""

    def changed(timer: ReferralTimer) -> None:
        if on_change is not None:
            on_change(timer.referral_id)

    steps = dict.fromkeys([kind.value for kind in TimerKind], keeper.fire)
    return Steps(sessionmaker, ReferralTimer, steps, after_commit=changed)


class ClockKeeper:
    """The step of spa's timers."""

    def __init__(self, teams: TeamsClient, policy: ClockPolicy, clock: Clock) -> None:
        self._teams = teams
        self._policy = policy
        self._clock = clock

    async def fire(self, session: AsyncSession, timer: ReferralTimer) -> None:
        referral = await session.get(Referral, timer.referral_id)
        assert referral is not None
        assignment = await _assignment(session, timer.assignment_id)
        await session.commit()  # the read ends before any call to teams
        fired = await self._fire(session, TimerKind(timer.kind), referral, assignment)
        log.info("timer_fired", timer_id=timer.id, kind=timer.kind, acted=fired)

    async def _fire(
        self,
        session: AsyncSession,
        kind: TimerKind,
        referral: Referral,
        assignment: ReferralAssignment | None,
    ) -> bool:
        if kind in (TimerKind.ACCEPTANCE_WINDOW, TimerKind.REROUTE):
            # "withdrawn" too: a reroute cut short after the take-back is finished on retry.
            # A re-route comes after a decline, or from a coordinator while the team still
            # holds the case unaccepted.
            wanted = (
                (A.ASSIGNED, A.WITHDRAWN)
                if kind is TimerKind.ACCEPTANCE_WINDOW
                else (A.DECLINED, A.ASSIGNED, A.WITHDRAWN)
            )
            if assignment is None or assignment.status not in wanted:
                return False
            if referral.status not in (S.ROUTED, S.REROUTED, S.DECLINED):
                return False
            return await self._reroute(session, referral, assignment, kind)
        if kind is TimerKind.SAFEGUARDING_ACKNOWLEDGEMENT:
            if assignment is None or assignment.status != A.ASSIGNED:
                return False
            return await self._breach(session, referral, "safeguarding_acknowledgement")
        if referral.status not in OPEN_CARE or await _first_contact_made(session, referral):
            return False
        if kind is TimerKind.AT_RISK:
            detail = {"clock": "response", "due_at": _deadline(referral)}
            lifecycle.record_event(session, referral, "sla_at_risk", actor=ACTOR, detail=detail)
            return True
        return await self._breach(session, referral, "response")

    async def _breach(self, session: AsyncSession, referral: Referral, clock: str) -> bool:
        """Record the breach and put the case on its locality coordinator's list."""
        if referral.locality_code is None:
            referral.locality_code = await self._teams.locate(**placement.patient_place(referral))
        referral.escalated_at = referral.escalated_at or self._clock()
        detail = {"clock": clock, "locality_code": referral.locality_code}
        lifecycle.record_event(session, referral, "sla_breached", actor=ACTOR, detail=detail)
        return True

    async def _reroute(
        self,
        session: AsyncSession,
        referral: Referral,
        assignment: ReferralAssignment,
        kind: TimerKind,
    ) -> bool:
        """Offer the case to the next team. Safe to run again after any failure: the take-back
        and teams' assignment repeat harmlessly, a next team already recorded is kept, and
        the referral's move is one transaction at the end."""
        reason = _reroute_reason(kind, assignment)
        held = assignment.status != A.DECLINED  # the team has not let it go: take it back
        if held and not await self._teams.take_back(assignment.assignment_id, reason):
            return False  # the team accepted first; its acceptance is on its way
        existing = await service.assignments_of(session, referral.id)
        await session.commit()
        care = [row for row in existing if row.kind == AssignmentKind.CARE]
        later = [
            row
            for row in care
            if row.created_at > assignment.created_at and row.status == A.ASSIGNED
        ]
        detail: dict[str, object] = {"reason": reason, "from_team_id": str(assignment.team_id)}
        next_row = later[-1] if later else None
        made: Assignment | None = None  # teams' answer for a team offered the case now
        if next_row is None:
            tried = [row.team_id for row in care]
            next_row, made = await self._offer(session, referral, tried, existing)
        if await self._referral_moved_on(session, referral, next_row):
            return False
        if held and assignment.status != A.WITHDRAWN:
            placement.withdraw_assignment(session, referral, assignment, reason, ACTOR)
        if next_row is None:
            referral.queue_reason = QueueReason.NO_TEAM
            referral.locality_code = referral.locality_code or await self._teams.locate(
                **placement.patient_place(referral)
            )
            target = S.AWAITING_ASSESSMENT
        else:
            detail["to_team_id"] = str(next_row.team_id)
            target = S.REROUTED
            if made is not None:
                clocks.start_acceptance_window(session, self._policy, referral, made, self._clock())
        lifecycle.transition(session, referral, target, actor=ACTOR, detail=detail)
        return True

    async def _offer(
        self,
        session: AsyncSession,
        referral: Referral,
        tried: list[uuid.UUID],
        existing: list[ReferralAssignment],
    ) -> tuple[ReferralAssignment | None, Assignment | None]:
        """Assign the next team the directory names, recorded at once in its own transaction,
        so that a case teams holds is never unknown here. Returns the row recorded and teams'
        answer (with the acceptance window's end); neither when no team is left."""
        offered = await placement.next_team(self._teams, self._policy, referral, tried)
        if offered is None:
            return None, None
        team, made = offered
        placement.record_assignment(
            session, referral, AssignmentKind.CARE, team, made, existing, ACTOR, at=self._clock()
        )
        await session.commit()
        return await _assignment(session, made.id), made

    async def _referral_moved_on(
        self, session: AsyncSession, referral: Referral, offered: ReferralAssignment | None
    ) -> bool:
        """Whether the referral changed meanwhile (cancelled, accepted): then the team just
        offered the case is told it is not theirs after all."""
        await session.refresh(referral, with_for_update=True)
        if referral.status in (S.ROUTED, S.REROUTED, S.DECLINED):
            return False
        if offered is not None and offered.status == A.ASSIGNED:
            await self._teams.take_back(offered.assignment_id, "referral_changed")
            placement.withdraw_assignment(session, referral, offered, "referral_changed", ACTOR)
        return True


def _reroute_reason(kind: TimerKind, assignment: ReferralAssignment) -> str:
    if kind is TimerKind.ACCEPTANCE_WINDOW:
        return "acceptance_window_lapsed"
    return "declined" if assignment.status == A.DECLINED else COORDINATOR_REROUTE


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
