"""Working the queue: list, claim, assess, resolve with advice, close a duplicate, transfer to
the CRU. They flush; the request edge commits.

A claim is taken by one conditional UPDATE (the case is still waiting and nobody else holds a
live claim), which the database applies to one request at a time, so two handlers never hold
the same case. A claim lapses at its expiry, so a case is never stranded by a handler who left.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.shared import pagination
from services.shared.auth import ALL_LOCALITIES, Principal
from services.shared.outbox import JobStatus
from services.shared.vocabulary import ReferralStatus as S
from services.shared.vocabulary import Urgency
from services.spa.audit import record_access
from services.spa.queue.problems import (
    AdviceNotEnough,
    CaseClaimed,
    CaseNotQueued,
    ClaimNotHeld,
    ConcernStays,
    NoDuplicateLinked,
)
from services.spa.queue.schemas import ClaimRead, ContactAssessmentCreate, CruTransfer
from services.spa.referrals import lifecycle
from services.spa.referrals import service as referrals_service
from services.spa.referrals.clock_keeper import OPEN_CARE
from services.spa.referrals.clocks import TimerKind
from services.spa.referrals.models import Referral, ReferralTimer
from services.spa.referrals.schemas import AdviceIn
from services.spa.referrals.service import (
    ESCALATE_JOB,
    OPEN_STATUSES,
    ROUTE_JOB,
    handled_by,
    release_from_queue,
)

URGENCY_ORDER = case(
    {Urgency.CRISIS.value: 0, Urgency.URGENT.value: 1, Urgency.ROUTINE.value: 2},
    value=Referral.urgency,
    else_=3,
)


def _waiting() -> list[ColumnElement[bool]]:
    return [Referral.status == S.AWAITING_ASSESSMENT, Referral.queue_reason.is_not(None)]


def _in_localities(principal: Principal) -> list[ColumnElement[bool]]:
    if ALL_LOCALITIES in principal.localities:
        return []
    return [Referral.locality_code.in_(sorted(principal.localities))]


URGENCY_RANKS = {Urgency.CRISIS.value: 0, Urgency.URGENT.value: 1, Urgency.ROUTINE.value: 2}
QUEUE_KEY = (URGENCY_ORDER, Referral.created_at, Referral.id)
ESCALATIONS_KEY = (Referral.escalated_at, Referral.id)


def queue_key(referral: Referral) -> tuple[int, datetime, uuid.UUID]:
    """Where a case sorts in the queue (the columns of ``QUEUE_KEY``), for its cursor."""
    return (URGENCY_RANKS.get(referral.urgency, 3), referral.created_at, referral.id)


def escalations_key(referral: Referral) -> tuple[datetime, uuid.UUID]:
    assert referral.escalated_at is not None
    return (referral.escalated_at, referral.id)


async def list_queue(
    session: AsyncSession,
    principal: Principal,
    *,
    locality: str | None,
    limit: int,
    after: tuple[Any, ...] | None = None,
) -> list[Referral]:
    """Waiting cases the client may work: most urgent first, then longest waiting."""
    query = select(Referral).where(*_waiting(), *_in_localities(principal))
    if locality is not None:
        query = query.where(Referral.locality_code == locality)
    start = pagination.after(QUEUE_KEY, after)
    if start is not None:
        query = query.where(start)
    return list(await session.scalars(query.order_by(*QUEUE_KEY).limit(limit)))


async def list_escalations(
    session: AsyncSession,
    principal: Principal,
    *,
    locality: str | None,
    limit: int,
    after: tuple[Any, ...] | None = None,
) -> list[Referral]:
    """Open cases whose response deadline passed: the locality coordinator's list, oldest
    escalation first."""
    query = select(Referral).where(
        Referral.escalated_at.is_not(None),
        Referral.status.in_(OPEN_STATUSES),
        *_in_localities(principal),
    )
    if locality is not None:
        query = query.where(Referral.locality_code == locality)
    start = pagination.after(ESCALATIONS_KEY, after)
    if start is not None:
        query = query.where(start)
    return list(await session.scalars(query.order_by(*ESCALATIONS_KEY).limit(limit)))


def at_risk() -> list[ColumnElement[bool]]:
    """Open cases past their response clock's at-risk point (its timer fired: the policy's
    ``at_risk_fraction`` of the target gone) whose deadline has not passed yet."""
    fired: Any = aliased(ReferralTimer)
    breach: Any = aliased(ReferralTimer)
    return [
        Referral.status.in_(OPEN_CARE),
        Referral.escalated_at.is_(None),
        exists().where(
            and_(
                fired.referral_id == Referral.id,
                fired.kind == TimerKind.AT_RISK,
                fired.status == JobStatus.DONE,
            )
        ),
        exists().where(
            and_(
                breach.referral_id == Referral.id,
                breach.kind == TimerKind.BREACH,
                breach.status == JobStatus.PENDING,
            )
        ),
    ]


async def list_at_risk(
    session: AsyncSession, principal: Principal, *, limit: int
) -> list[Referral]:
    """Cases at risk of missing their deadline in the client's localities, oldest first."""
    query = select(Referral).where(*at_risk(), *_in_localities(principal))
    order = (Referral.received_at, Referral.id)
    return list(await session.scalars(query.order_by(*order).limit(limit)))


def live_claim(referral: Referral, now: datetime) -> ClaimRead | None:
    if referral.claim_id is None or referral.claim_expires_at is None:
        return None
    if referral.claim_expires_at <= now or referral.claim_handler is None:
        return None
    return ClaimRead(
        claim_id=referral.claim_id,
        handler=referral.claim_handler,
        expires_at=referral.claim_expires_at,
    )


async def queued_case(
    session: AsyncSession, referral_id: uuid.UUID, principal: Principal, action: str
) -> Referral:
    """The waiting case, locked, if the client works its locality; audited either way, and a
    case elsewhere is answered as if it did not exist."""
    referral = await session.get(Referral, referral_id, with_for_update=True)
    visible = referral is not None and handled_by(referral, principal)
    record_access(
        session,
        client_id=principal.client_id,
        action=action,
        resource_type="referral",
        resource_id=referral_id,
        outcome="allowed" if visible else "denied",
    )
    waiting = visible and referral is not None and referral.queue_reason is not None
    if referral is None or not waiting or referral.status != S.AWAITING_ASSESSMENT:
        raise CaseNotQueued(f"No case {referral_id} is waiting in a queue this client works.")
    return referral


async def claim(
    session: AsyncSession,
    referral: Referral,
    principal: Principal,
    handler: str,
    now: datetime,
    duration: timedelta,
) -> ClaimRead:
    """Claim the case for a handler; the same handler claiming again renews their claim."""
    held = live_claim(referral, now)
    mine = (
        held is not None
        and held.handler == handler
        and referral.claim_client_id == (principal.client_id)
    )
    claim_id = held.claim_id if mine and held is not None else uuid.uuid4()
    result = await session.execute(
        update(Referral)
        .where(
            Referral.id == referral.id,
            *_waiting(),
            or_(
                Referral.claim_expires_at.is_(None),
                Referral.claim_expires_at <= now,
                and_(
                    Referral.claim_client_id == principal.client_id,
                    Referral.claim_handler == handler,
                ),
            ),
        )
        .values(
            claim_id=claim_id,
            claim_client_id=principal.client_id,
            claim_handler=handler,
            claim_expires_at=now + duration,
            version=Referral.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise CaseClaimed(f"Case {referral.id} is claimed by another handler.")
    await session.refresh(referral)
    detail = {"handler": handler, "expires_at": (now + duration).isoformat()}
    lifecycle.record_event(session, referral, "claimed", actor=principal.client_id, detail=detail)
    return ClaimRead(claim_id=claim_id, handler=handler, expires_at=now + duration)


def require_claim(
    referral: Referral, claim_id: uuid.UUID, principal: Principal, now: datetime
) -> str:
    """The handler holding this live claim, or a refusal."""
    held = live_claim(referral, now)
    if held is None or held.claim_id != claim_id or referral.claim_client_id != principal.client_id:
        raise ClaimNotHeld(f"Claim {claim_id} on case {referral.id} is not current.")
    return held.handler


def release(session: AsyncSession, referral: Referral, handler: str, actor: str) -> None:
    referrals_service.clear_claim(referral)
    lifecycle.record_event(session, referral, "released", actor=actor, detail={"handler": handler})


def assess(
    session: AsyncSession,
    referral: Referral,
    body: ContactAssessmentCreate,
    handler: str,
    now: datetime,
    actor: str,
) -> None:
    """Record the contact assessment and hand the case to triage on its findings."""
    referral.urgency = body.urgency
    referral.needs = list(body.needs)
    referral.red_flags = list(body.red_flags)
    referral.risk = body.risk.model_dump(exclude_defaults=True)
    if body.safeguarding is not None:
        if referral.safeguarding.get("concern") and not body.safeguarding.concern:
            raise ConcernStays(
                "A safeguarding concern raised on this case stays; the CRU decides on it."
            )
        referral.safeguarding = body.safeguarding.model_dump(mode="json")
    referral.assessment = {"handler": handler, "at": now.isoformat(), "note": body.note}
    referral.assessed_at = now
    release_from_queue(referral)
    detail = {
        "handler": handler,
        "urgency": body.urgency,
        "needs": list(body.needs),
        "red_flags": list(body.red_flags),
    }
    lifecycle.record_event(
        session, referral, "contact_assessment_completed", actor=actor, detail=detail
    )
    referrals_service.add_job(session, referral, ROUTE_JOB)


async def close_as_duplicate(
    session: AsyncSession, referral: Referral, handler: str, actor: str
) -> None:
    """Close the case as a duplicate, only while the referral it duplicates is still open:
    otherwise nobody would be working the need."""
    earlier = (
        await session.get(Referral, referral.possible_duplicate_of)
        if referral.possible_duplicate_of
        else None
    )
    if earlier is None or earlier.status not in OPEN_STATUSES:
        raise NoDuplicateLinked(
            f"Case {referral.id} is not linked to an earlier referral that is still open."
        )
    release_from_queue(referral)
    detail = {"handler": handler, "duplicate_of": str(referral.possible_duplicate_of)}
    lifecycle.transition(session, referral, S.CLOSED, actor=actor, detail=detail)


def resolve_with_advice(
    session: AsyncSession, referral: Referral, advice: AdviceIn, actor: str
) -> None:
    """Advice alone cannot close a case with red flags or a safeguarding concern."""
    if referral.red_flags or referral.safeguarding.get("concern"):
        raise AdviceNotEnough(
            "A case with red flags or a safeguarding concern needs an assessment, not advice."
        )
    referrals_service.resolve_with_advice(session, referral, advice, actor=actor)


def transfer_to_cru(
    session: AsyncSession, referral: Referral, body: CruTransfer, handler: str, actor: str
) -> None:
    """Escalate the concern to the CRU now; the handler keeps the case for its care needs."""
    referral.safeguarding = body.safeguarding.model_dump(mode="json")
    detail = {"handler": handler, "categories": [c.value for c in body.safeguarding.categories]}
    lifecycle.record_event(session, referral, "cru_transfer_requested", actor=actor, detail=detail)
    referrals_service.add_job(session, referral, ESCALATE_JOB)
