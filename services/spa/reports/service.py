"""Response times per referral, and their summary.

Clock start is receipt by spa; acceptance and first contact are the times the holding team
reported. A referral counts towards the share within target once its outcome is known: a first
contact was recorded, or the deadline passed without one.
"""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.vocabulary import AssignmentKind, AssignmentStatus
from services.shared.vocabulary import ReferralStatus as S
from services.spa.referrals.models import Referral, ReferralAssignment

# A referral that ended without a visit (cancelled, redirected, advice, a duplicate, refused by
# the rules) is not a miss.
ENDED_UNSEEN = (S.CANCELLED, S.REDIRECTED_EMERGENCY, S.RESOLVED_WITH_ADVICE, S.CLOSED)


@dataclass(frozen=True)
class ResponseTime:
    referral_id: uuid.UUID
    channel: str
    pathway: str
    urgency: str
    team_code: str | None
    received_at: datetime
    accepted_at: datetime | None
    first_contact_at: datetime | None
    target_seconds: int | None
    within_target: bool | None

    @property
    def seconds_to_acceptance(self) -> float | None:
        return _seconds(self.received_at, self.accepted_at)

    @property
    def seconds_to_first_contact(self) -> float | None:
        return _seconds(self.received_at, self.first_contact_at)


def _seconds(start: datetime, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if end is not None else None


async def response_times(
    session: AsyncSession,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    pathway: str | None,
    team: str | None,
) -> list[ResponseTime]:
    query = select(Referral).where(
        Referral.received_at >= start, Referral.received_at < end, Referral.pathway.is_not(None)
    )
    if pathway is not None:
        query = query.where(Referral.pathway == pathway)
    referrals = list(await session.scalars(query.order_by(Referral.received_at, Referral.id)))
    holders = await _care_holders(session, [referral.id for referral in referrals])
    rows = [_row(referral, holders.get(referral.id), now) for referral in referrals]
    return [row for row in rows if team is None or row.team_code == team]


async def _care_holders(
    session: AsyncSession, referral_ids: list[uuid.UUID]
) -> dict[uuid.UUID, ReferralAssignment]:
    """The care assignment that holds each referral: the latest one not withdrawn."""
    holders: dict[uuid.UUID, ReferralAssignment] = {}
    for chunk in range(0, len(referral_ids), 500):
        query = (
            select(ReferralAssignment)
            .where(
                ReferralAssignment.referral_id.in_(referral_ids[chunk : chunk + 500]),
                ReferralAssignment.kind == AssignmentKind.CARE,
                # The team that holds (or held) the case, not one that let it go.
                ReferralAssignment.status.not_in(
                    (AssignmentStatus.WITHDRAWN, AssignmentStatus.DECLINED)
                ),
            )
            .order_by(ReferralAssignment.created_at)
        )
        for assignment in await session.scalars(query):
            holders[assignment.referral_id] = assignment
    return holders


def _row(referral: Referral, holder: ReferralAssignment | None, now: datetime) -> ResponseTime:
    first_contact = holder.first_contact_at if holder else None
    target = referral.response_target_seconds
    within: bool | None = None
    if target is not None:
        deadline = referral.received_at + timedelta(seconds=target)
        if first_contact is not None:
            within = first_contact <= deadline
        elif now > deadline and referral.status not in ENDED_UNSEEN:
            within = False
    assert referral.pathway is not None
    return ResponseTime(
        referral_id=referral.id,
        channel=referral.channel,
        pathway=referral.pathway,
        urgency=referral.urgency,
        team_code=holder.team_code if holder else None,
        received_at=referral.received_at,
        accepted_at=holder.accepted_at if holder else None,
        first_contact_at=first_contact,
        target_seconds=target,
        within_target=within,
    )


def percentiles(values: list[float]) -> tuple[float | None, float | None]:
    """The median and the 90th percentile (inclusive method), or None without data."""
    if not values:
        return None, None
    if len(values) == 1:
        return values[0], values[0]
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return statistics.median(values), deciles[8]
