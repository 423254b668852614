"""Changes teams make to their assignments (accept, decline, first contact, close), reported by
the teams service so that the referral's status and timeline stay true.

Each assignment's changes carry a sequence number: a change already applied is acknowledged
without effect (the report was retried), and a gap is refused so that nothing is applied out of
order. A change the referral's state machine does not allow (a team accepting a referral the
referrer has since cancelled) is still recorded on the timeline, but moves no status.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.vocabulary import AssignmentKind
from services.shared.vocabulary import AssignmentStatus as A
from services.shared.vocabulary import ReferralStatus as S
from services.spa.referrals import clocks, lifecycle
from services.spa.referrals.clocks import TimerKind
from services.spa.referrals.models import Referral, ReferralAssignment
from services.spa.referrals.problems import (
    AssignmentNoLongerHeld,
    AssignmentUnknown,
    UpdateOutOfOrder,
)
from services.spa.referrals.schemas import AssignmentChange, AssignmentUpdate

CARE_STATUS = {
    AssignmentChange.ACCEPTED: S.ACCEPTED,
    AssignmentChange.DECLINED: S.DECLINED,
    AssignmentChange.CLOSED: S.CLOSED,
}
ASSIGNMENT_STATUS = {
    AssignmentChange.ACCEPTED: A.ACCEPTED,
    AssignmentChange.DECLINED: A.DECLINED,
    AssignmentChange.CLOSED: A.CLOSED,
}


async def apply_update(
    session: AsyncSession, referral: Referral, update: AssignmentUpdate, actor: str
) -> bool:
    """Apply one reported change; False when it had already been applied."""
    assignment = await session.scalar(
        select(ReferralAssignment)
        .where(
            ReferralAssignment.referral_id == referral.id,
            ReferralAssignment.assignment_id == update.assignment_id,
        )
        .with_for_update()
    )
    if assignment is None or assignment.team_id != update.team_id:
        raise AssignmentUnknown(
            f"Referral {referral.id} has no assignment {update.assignment_id} for that team."
        )
    if update.seq <= assignment.update_seq:
        return False
    if update.seq != assignment.update_seq + 1:
        raise UpdateOutOfOrder(
            f"Change {update.seq} arrived before change {assignment.update_seq + 1}."
        )
    _require_fits(assignment, update)
    assignment.update_seq = update.seq
    _update_assignment(assignment, update)
    detail = _detail(update)
    target = CARE_STATUS.get(update.change)
    # What the assignment is for is what spa recorded when it made it, not what a report says.
    kind = AssignmentKind(assignment.kind)
    if (
        kind is AssignmentKind.CARE
        and target is not None
        and lifecycle.can_transition(S(referral.status), target)
    ):
        lifecycle.transition(session, referral, target, actor=actor, detail=detail)
    else:
        prefix = "safeguarding_" if kind is AssignmentKind.SAFEGUARDING else "team_"
        lifecycle.record_event(
            session, referral, f"{prefix}{update.change}", actor=actor, detail=detail
        )
    await _move_clocks(session, referral, assignment, update)
    await session.flush()
    return True


def _require_fits(assignment: ReferralAssignment, update: AssignmentUpdate) -> None:
    """Refuse a change the assignment cannot take: nothing is applied and no clock moves."""
    if assignment.status == A.WITHDRAWN:
        raise AssignmentNoLongerHeld(
            f"Assignment {assignment.assignment_id} was withdrawn; the case went to another team."
        )
    needs = {
        AssignmentChange.ACCEPTED: (A.ASSIGNED,),
        AssignmentChange.DECLINED: (A.ASSIGNED,),
        AssignmentChange.FIRST_CONTACT: (A.ACCEPTED,),
        AssignmentChange.CLOSED: (A.ACCEPTED,),
    }[update.change]
    if assignment.status not in needs:
        raise AssignmentNoLongerHeld(
            f"An assignment that is {assignment.status} cannot take the change {update.change}."
        )


async def _move_clocks(
    session: AsyncSession,
    referral: Referral,
    assignment: ReferralAssignment,
    update: AssignmentUpdate,
) -> None:
    """Acceptance stops the team's acceptance window; a care team's decline sends the case on
    at once; the first contact (or closing) stops the response clock."""
    if update.change is AssignmentChange.ACCEPTED:
        await clocks.stop(
            session, referral.id, (TimerKind.ACCEPTANCE_WINDOW,), assignment.assignment_id
        )
        if assignment.kind == AssignmentKind.SAFEGUARDING:
            await clocks.stop(
                session,
                referral.id,
                (TimerKind.SAFEGUARDING_ACKNOWLEDGEMENT,),
                assignment.assignment_id,
            )
    elif update.change is AssignmentChange.DECLINED and assignment.kind == AssignmentKind.CARE:
        await clocks.stop(
            session, referral.id, (TimerKind.ACCEPTANCE_WINDOW,), assignment.assignment_id
        )
        clocks.schedule(session, referral, TimerKind.REROUTE, update.at, assignment.assignment_id)
    elif assignment.kind == AssignmentKind.CARE:
        await clocks.stop(session, referral.id, clocks.RESPONSE_TIMERS)


def _update_assignment(assignment: ReferralAssignment, update: AssignmentUpdate) -> None:
    assignment.status = ASSIGNMENT_STATUS.get(update.change, assignment.status)
    if update.change is AssignmentChange.ACCEPTED:
        assignment.accepted_at = update.at
        assignment.planned_first_contact_at = update.planned_first_contact_at
    if update.change is AssignmentChange.FIRST_CONTACT:
        assignment.first_contact_at = update.at


def _detail(update: AssignmentUpdate) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "assignment_id": str(update.assignment_id),
        "team_id": str(update.team_id),
        "change": update.change,
        "at": update.at.isoformat(),
    }
    if update.planned_first_contact_at is not None:
        detail["planned_first_contact_at"] = update.planned_first_contact_at.isoformat()
    if update.decline_reason is not None:
        detail["decline_reason"] = update.decline_reason
    if update.outcome is not None:
        detail["outcome"] = update.outcome
    return detail
