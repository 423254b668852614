"""Who is shown a referral's clinical payload (stored beside it at intake): those with a need
to know, the referrer, the call handlers of the case's locality and the teams holding it; every
showing is audited. Nothing here is logged."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.auth import Principal
from services.shared.vocabulary import AssignmentStatus
from services.spa.audit import record_access
from services.spa.referrals.clinical_schemas import ClinicalIn
from services.spa.referrals.models import Referral, ReferralAssignment, ReferralClinical
from services.spa.referrals.service import handled_by, is_call_handler

READ_ACTION = "referral.clinical.read"
# A team that declined the case, or was withdrawn from it, no longer holds it.
_NOT_HOLDING = (AssignmentStatus.DECLINED, AssignmentStatus.WITHDRAWN)


def may_see(
    referral: Referral, principal: Principal, assignments: Sequence[ReferralAssignment]
) -> bool:
    """The referrer, a call-handler system bound to the locality whose queue the case came to,
    or a system acting for a team that holds the case (for care or the safeguarding concern)."""
    if referral.referrer_client_id == principal.client_id:
        return True
    if is_call_handler(principal) and handled_by(referral, principal):
        return True
    return any(a.team_code in principal.teams and a.status not in _NOT_HOLDING for a in assignments)


async def shown_to(
    session: AsyncSession,
    referral: Referral,
    principal: Principal,
    assignments: Sequence[ReferralAssignment],
) -> ClinicalIn | None:
    """The payload if this client may see it, its showing audited; else None, unaudited (the
    read of the referral itself is audited by its caller)."""
    if not may_see(referral, principal, assignments):
        return None
    row = await session.get(ReferralClinical, referral.id)
    if row is None:
        return None
    record_access(
        session,
        client_id=principal.client_id,
        action=READ_ACTION,
        resource_type="referral",
        resource_id=referral.id,
    )
    return ClinicalIn.model_validate(row.details)
