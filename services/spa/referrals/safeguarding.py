"""The Central Referral Unit's list: the safeguarding escalations its teams hold, with the clock
on each acknowledgement. The CRU acknowledges a concern by accepting its assignment in teams;
teams reports the acceptance here, which stops the clock (see team_updates)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.vocabulary import AssignmentKind
from services.shared.vocabulary import AssignmentStatus as A
from services.spa.referrals.clocks import TimerKind
from services.spa.referrals.models import Referral, ReferralAssignment, ReferralTimer

# Concerns still held by the CRU: waiting for acknowledgement, or acknowledged and open.
HELD = (A.ASSIGNED, A.ACCEPTED)


@dataclass(frozen=True)
class Escalation:
    assignment: ReferralAssignment
    referral: Referral
    # When the acknowledgement falls due (None where no clock was started).
    acknowledge_by: datetime | None

    @property
    def acknowledged(self) -> bool:
        return self.assignment.status != A.ASSIGNED


async def escalations_for(
    session: AsyncSession, team_codes: Collection[str], *, limit: int
) -> list[Escalation]:
    """The safeguarding escalations the teams hold: those not yet acknowledged first, then the
    oldest to reach the CRU."""
    if not team_codes:
        return []
    waiting_first = case((ReferralAssignment.status == A.ASSIGNED, 0), else_=1)
    rows = (
        await session.execute(
            select(ReferralAssignment, Referral)
            .join(Referral, Referral.id == ReferralAssignment.referral_id)
            .where(
                ReferralAssignment.kind == AssignmentKind.SAFEGUARDING,
                ReferralAssignment.team_code.in_(sorted(team_codes)),
                ReferralAssignment.status.in_(HELD),
            )
            .order_by(waiting_first, ReferralAssignment.created_at, ReferralAssignment.id)
            .limit(limit)
        )
    ).all()
    due = await _acknowledgement_due(session, [assignment.assignment_id for assignment, _ in rows])
    return [
        Escalation(assignment, referral, due.get(assignment.assignment_id))
        for assignment, referral in rows
    ]


async def escalation_held(
    session: AsyncSession, assignment_id: uuid.UUID, team_codes: Collection[str]
) -> ReferralAssignment | None:
    """The safeguarding assignment, if one of the teams holds it."""
    return await session.scalar(
        select(ReferralAssignment).where(
            ReferralAssignment.assignment_id == assignment_id,
            ReferralAssignment.kind == AssignmentKind.SAFEGUARDING,
            ReferralAssignment.team_code.in_(sorted(team_codes) or [""]),
        )
    )


async def _acknowledgement_due(
    session: AsyncSession, assignment_ids: list[uuid.UUID]
) -> dict[uuid.UUID, datetime]:
    if not assignment_ids:
        return {}
    timers = await session.execute(
        select(ReferralTimer.assignment_id, ReferralTimer.due_at).where(
            ReferralTimer.assignment_id.in_(assignment_ids),
            ReferralTimer.kind == TimerKind.SAFEGUARDING_ACKNOWLEDGEMENT,
        )
    )
    return {assignment_id: due_at for assignment_id, due_at in timers if assignment_id}
