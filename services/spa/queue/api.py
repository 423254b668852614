"""HTTP API of the call-handler queue. Only call-handler systems (scope ``queue:work``) use it,
and each sees only the localities it is registered for."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request

from services.shared import pagination
from services.shared.auth import Principal, requires
from services.shared.clock import NowDep
from services.shared.db import SessionDep
from services.shared.pagination import CursorQuery, Limit
from services.shared.problems import ConcurrentChange, problem_responses
from services.shared.state import state_of
from services.spa.api import WakeupsDep
from services.spa.audit import record_access
from services.spa.queue import service
from services.spa.queue.problems import (
    AdviceNotEnough,
    CaseClaimed,
    CaseNotQueued,
    ClaimNotHeld,
    ConcernStays,
    NoDuplicateLinked,
)
from services.spa.queue.schemas import (
    AdviceResolution,
    ClaimCreate,
    ClaimedAction,
    ClaimRead,
    ContactAssessmentCreate,
    CruTransfer,
    QueueItem,
    QueueRead,
)
from services.spa.referrals.models import Referral
from services.spa.referrals.problems import IllegalTransition
from services.spa.referrals.service import age_on
from services.spa.state import SpaState

router = APIRouter(prefix="/v1/queue", tags=["queue"])
WorkerDep = Annotated[Principal, requires("queue:work")]
CaseId = Annotated[uuid.UUID, "the referral id"]
LocalityQuery = Annotated[
    str | None, Query(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]+$")
]
ACTION_PROBLEMS = problem_responses(CaseNotQueued, ClaimNotHeld, ConcurrentChange)


@dataclass
class Listing:
    """What both lists take and give: the client's localities, audited as one read."""

    session: SessionDep
    now: NowDep
    principal: WorkerDep
    locality: LocalityQuery = None
    cursor: CursorQuery = None
    limit: Limit = 50

    def start(self, name: str, types: tuple[type, ...]) -> tuple[Any, ...] | None:
        return pagination.decode(self.cursor, name, types)

    def answer(
        self, referrals: list[Referral], action: str, name: str, key_of: Callable[[Referral], Any]
    ) -> QueueRead:
        record_access(
            self.session,
            client_id=self.principal.client_id,
            action=action,
            resource_type="queue",
            resource_id=self.locality or "*",
        )
        found, next_cursor = pagination.page_of(referrals, self.limit, name, key_of)
        return QueueRead(
            items=[_item(referral, self.now) for referral in found], next_cursor=next_cursor
        )


ListingDep = Annotated[Listing, Depends()]
QUEUE, ESCALATIONS = "queue", "escalations"


@router.get(
    "",
    summary="Cases waiting for a call handler: most urgent first, then oldest",
    responses=problem_responses(pagination.InvalidCursor),
)
async def list_queue(listing: ListingDep) -> QueueRead:
    referrals = await service.list_queue(
        listing.session,
        listing.principal,
        locality=listing.locality,
        limit=listing.limit + 1,
        after=listing.start(QUEUE, (int, datetime, uuid.UUID)),
    )
    return listing.answer(referrals, "queue.list", QUEUE, service.queue_key)


@router.get(
    "/escalations",
    summary="Open cases whose response deadline passed: the locality coordinator's list",
    responses=problem_responses(pagination.InvalidCursor),
)
async def list_escalations(listing: ListingDep) -> QueueRead:
    referrals = await service.list_escalations(
        listing.session,
        listing.principal,
        locality=listing.locality,
        limit=listing.limit + 1,
        after=listing.start(ESCALATIONS, (datetime, uuid.UUID)),
    )
    return listing.answer(referrals, "queue.escalations", ESCALATIONS, service.escalations_key)


@router.post(
    "/{referral_id}/claim",
    summary="Claim a case for a handler, or renew the handler's own claim",
    responses=problem_responses(CaseNotQueued, CaseClaimed),
)
async def claim_case(
    referral_id: CaseId,
    body: ClaimCreate,
    request: Request,
    session: SessionDep,
    now: NowDep,
    principal: WorkerDep,
) -> ClaimRead:
    settings = state_of(request.app, SpaState).settings
    referral = await service.queued_case(session, referral_id, principal, "queue.claim")
    duration = timedelta(seconds=settings.queue_claim_seconds)
    return await service.claim(session, referral, principal, body.handler, now, duration)


@router.post(
    "/{referral_id}/release",
    summary="Give a claimed case back to the queue",
    responses=ACTION_PROBLEMS,
)
async def release_case(
    referral_id: CaseId, body: ClaimedAction, session: SessionDep, now: NowDep, principal: WorkerDep
) -> QueueItem:
    referral = await service.queued_case(session, referral_id, principal, "queue.release")
    handler = service.require_claim(referral, body.claim_id, principal, now)
    service.release(session, referral, handler, principal.client_id)
    return _item(referral, now)


@router.post(
    "/{referral_id}/assessment",
    summary="Submit the contact assessment; the case is triaged and routed on it",
    responses={**ACTION_PROBLEMS, **problem_responses(ConcernStays)},
)
async def assess_case(
    referral_id: CaseId,
    body: ContactAssessmentCreate,
    request: Request,
    wakeups: WakeupsDep,
    background: BackgroundTasks,
    session: SessionDep,
    now: NowDep,
    principal: WorkerDep,
) -> QueueItem:
    referral = await service.queued_case(session, referral_id, principal, "queue.assess")
    handler = service.require_claim(referral, body.claim_id, principal, now)
    service.assess(session, referral, body, handler, now, principal.client_id)
    background.add_task(wakeups.routing)
    return _item(referral, now)


@router.post(
    "/{referral_id}/advice",
    summary="Resolve the case with advice",
    responses={**ACTION_PROBLEMS, **problem_responses(AdviceNotEnough)},
)
async def resolve_case_with_advice(
    referral_id: CaseId,
    body: AdviceResolution,
    session: SessionDep,
    now: NowDep,
    principal: WorkerDep,
) -> QueueItem:
    referral = await service.queued_case(session, referral_id, principal, "queue.advice")
    service.require_claim(referral, body.claim_id, principal, now)
    service.resolve_with_advice(session, referral, body.advice, principal.client_id)
    return _item(referral, now)


@router.post(
    "/{referral_id}/duplicate",
    summary="Close the case as a duplicate of the earlier referral it is linked to",
    responses={**ACTION_PROBLEMS, **problem_responses(NoDuplicateLinked, IllegalTransition)},
)
async def close_duplicate(
    referral_id: CaseId, body: ClaimedAction, session: SessionDep, now: NowDep, principal: WorkerDep
) -> QueueItem:
    referral = await service.queued_case(session, referral_id, principal, "queue.duplicate")
    handler = service.require_claim(referral, body.claim_id, principal, now)
    await service.close_as_duplicate(session, referral, handler, principal.client_id)
    return _item(referral, now)


@router.post(
    "/{referral_id}/cru-transfer",
    summary="Transfer a safeguarding concern to the Central Referral Unit now",
    responses=ACTION_PROBLEMS,
)
async def transfer_to_cru(
    referral_id: CaseId,
    body: CruTransfer,
    request: Request,
    wakeups: WakeupsDep,
    background: BackgroundTasks,
    session: SessionDep,
    now: NowDep,
    principal: WorkerDep,
) -> QueueItem:
    referral = await service.queued_case(session, referral_id, principal, "queue.cru_transfer")
    handler = service.require_claim(referral, body.claim_id, principal, now)
    service.transfer_to_cru(session, referral, body, handler, principal.client_id)
    background.add_task(wakeups.routing)
    return _item(referral, now)


def _item(referral: Referral, now: NowDep) -> QueueItem:
    return QueueItem(
        referral_id=referral.id,
        status=referral.status,
        queue_reason=referral.queue_reason or ("deadline_passed" if referral.escalated_at else ""),
        channel=referral.channel,
        urgency=referral.urgency,
        needs=referral.needs,
        red_flags=referral.red_flags,
        safeguarding_concern=bool(referral.safeguarding.get("concern")),
        age_years=age_on(referral.date_of_birth, referral.created_at.date()),
        locality_code=referral.locality_code,
        possible_duplicate_of=referral.possible_duplicate_of,
        received_at=referral.created_at,
        claim=service.live_claim(referral, now),
    )
