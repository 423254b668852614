"""A locality coordinator sends a case on to the next team now, rather than waiting for its
team's acceptance window to lapse.

Nothing here moves the case itself: the request schedules the clock's own re-route for the
team holding the case, due at once, and the timer does what a lapsed window or a decline does
(takes the case back from the team, offers it to the next team the directory names, and
withdraws it from the first), so a coordinator's re-route and the clock's are one path.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.auth import Principal
from services.shared.outbox import JobStatus
from services.shared.problems import TYPE_PREFIX, Conflict
from services.shared.vocabulary import AssignmentKind
from services.shared.vocabulary import AssignmentStatus as A
from services.shared.vocabulary import ReferralStatus as S
from services.spa.audit import record_access
from services.spa.referrals import clocks, lifecycle
from services.spa.referrals.clocks import TimerKind
from services.spa.referrals.models import Referral, ReferralAssignment, ReferralTimer

REROUTE_REQUESTED = "reroute_requested"
# While the case is offered to a team (or declined by one) it can go on to the next.
MOVABLE = (S.ROUTED, S.REROUTED, S.DECLINED)


class RerouteReason(StrEnum):
    """Why a coordinator sends the case on."""

    TEAM_UNABLE_TO_RESPOND = "team_unable_to_respond"
    TEAM_AT_CAPACITY = "team_at_capacity"
    DEADLINE_AT_RISK = "deadline_at_risk"
    WRONG_TEAM = "wrong_team"


class CannotReroute(Conflict):
    type = TYPE_PREFIX + "cannot-reroute"
    title = "This case cannot be sent to another team now"


async def request_reroute(
    session: AsyncSession,
    referral: Referral,
    principal: Principal,
    reason: RerouteReason,
    now: datetime,
) -> ReferralAssignment:
    """Send the case on from the team holding it for care, at once; the care assignment it
    leaves. Refused unless the case is with a team that has not accepted it."""
    assignment = await _held_for_care(session, referral)
    if S(referral.status) not in MOVABLE or assignment is None:
        raise CannotReroute(
            "Only a case offered to a team that has not accepted it (routed, rerouted or "
            f"declined) can be sent on; this one is {referral.status.replace('_', ' ')}."
        )
    # The team's window would otherwise send the case on a second time when it lapses.
    await clocks.stop(
        session, referral.id, (TimerKind.ACCEPTANCE_WINDOW,), assignment.assignment_id
    )
    if not await _bring_forward(session, assignment, now):
        clocks.schedule(session, referral, TimerKind.REROUTE, now, assignment.assignment_id)
    detail = {
        "reason": reason.value,
        "assignment_id": str(assignment.assignment_id),
        "from_team_id": str(assignment.team_id),
    }
    lifecycle.record_event(
        session, referral, REROUTE_REQUESTED, actor=principal.client_id, detail=detail
    )
    record_access(
        session,
        client_id=principal.client_id,
        action="referral.reroute",
        resource_type="referral",
        resource_id=referral.id,
    )
    await session.flush()
    return assignment


async def _held_for_care(session: AsyncSession, referral: Referral) -> ReferralAssignment | None:
    """The latest care assignment a team holds without having accepted it (or has declined)."""
    return await session.scalar(
        select(ReferralAssignment)
        .where(
            ReferralAssignment.referral_id == referral.id,
            ReferralAssignment.kind == AssignmentKind.CARE,
            ReferralAssignment.status.in_((A.ASSIGNED, A.DECLINED)),
        )
        .order_by(ReferralAssignment.created_at.desc())
        .limit(1)
    )


async def _bring_forward(
    session: AsyncSession, assignment: ReferralAssignment, now: datetime
) -> bool:
    """A re-route already waiting for the assignment (after a decline) is made due now, so the
    case moves once; whether there was one."""
    waiting = (
        ReferralTimer.assignment_id == assignment.assignment_id,
        ReferralTimer.kind == TimerKind.REROUTE,
        ReferralTimer.status == JobStatus.PENDING,
    )
    found = await session.scalar(select(ReferralTimer.id).where(*waiting).limit(1))
    if found is None:
        return False
    await session.execute(
        update(ReferralTimer)
        .where(*waiting, ReferralTimer.due_at > now)
        .values(due_at=now, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    return True
