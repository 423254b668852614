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
from services.shared.vocabulary import ReferralStatus as S
from services.spa.referrals import lifecycle
from services.spa.referrals.models import Referral, ReferralAssignment
from services.spa.referrals.problems import AssignmentUnknown, UpdateOutOfOrder
from services.spa.referrals.schemas import AssignmentChange, AssignmentUpdate

CARE_STATUS = {
    AssignmentChange.ACCEPTED: S.ACCEPTED,
    AssignmentChange.DECLINED: S.DECLINED,
    AssignmentChange.CLOSED: S.CLOSED,
}
ASSIGNMENT_STATUS = {
    AssignmentChange.ACCEPTED: "accepted",
    AssignmentChange.DECLINED: "declined",
    AssignmentChange.CLOSED: "closed",
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
        session.add(lifecycle.transition(referral, target, actor=actor, detail=detail))
    else:
        prefix = "safeguarding_" if kind is AssignmentKind.SAFEGUARDING else "team_"
        session.add(
            lifecycle.record_event(referral, f"{prefix}{update.change}", actor=actor, detail=detail)
        )
    await session.flush()
    return True


def _update_assignment(assignment: ReferralAssignment, update: AssignmentUpdate) -> None:
    assignment.status = ASSIGNMENT_STATUS.get(update.change, assignment.status)
    if update.change is AssignmentChange.ACCEPTED:
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
