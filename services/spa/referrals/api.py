"""HTTP API of referrals."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.auth import Principal, requires
from services.shared.db import SessionDep
from services.shared.outbox import OutboxWorker
from services.shared.problems import problem_responses
from services.spa.audit import record_access
from services.spa.referrals import service, team_updates
from services.spa.referrals.models import Referral
from services.spa.referrals.problems import (
    AssignmentUnknown,
    ChannelNotPermitted,
    ReferralNotFound,
    UpdateOutOfOrder,
)
from services.spa.referrals.schemas import (
    AssignmentRead,
    AssignmentUpdate,
    AssignmentUpdateResult,
    ConsentIn,
    PatientRead,
    ReferralCreate,
    ReferralRead,
    ReferrerIn,
    RiskMarkers,
    RoutingRead,
    SafeguardingIn,
    TeamRead,
    Timeline,
    TimelineEntry,
)

router = APIRouter(prefix="/v1/referrals", tags=["referrals"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Refer a person to the SPA; routing follows once the referral is stored",
    responses=problem_responses(ChannelNotPermitted),
)
async def create_referral(
    body: ReferralCreate,
    request: Request,
    response: Response,
    background: BackgroundTasks,
    session: SessionDep,
    principal: Annotated[Principal, requires("referrals:create")],
) -> ReferralRead:
    referral = await service.create_referral(session, body, principal)
    worker: OutboxWorker = request.app.state.worker
    # Runs after the response, so after the commit: the worker then sees the job at once.
    background.add_task(worker.notify)
    response.headers["Location"] = f"/v1/referrals/{referral.id}"
    return await _read(session, referral)


@router.get(
    "/{referral_id}",
    summary="A referral and where it has been routed",
    responses=problem_responses(ReferralNotFound),
)
async def get_referral(
    referral_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, requires("referrals:read")],
) -> ReferralRead:
    referral = await _visible(session, referral_id, principal, "referral.read")
    return await _read(session, referral)


@router.get(
    "/{referral_id}/timeline",
    summary="Every change to a referral, oldest first",
    responses=problem_responses(ReferralNotFound),
)
async def get_timeline(
    referral_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, requires("referrals:read")],
) -> Timeline:
    referral = await _visible(session, referral_id, principal, "referral.timeline.read")
    events = await service.timeline_of(session, referral.id)
    return Timeline(
        referral_id=referral.id,
        events=[TimelineEntry.model_validate(event, from_attributes=True) for event in events],
    )


@router.post(
    "/{referral_id}/assignment-updates",
    summary="A team's change to its assignment, reported by the teams service",
    responses=problem_responses(ReferralNotFound, AssignmentUnknown, UpdateOutOfOrder),
)
async def post_assignment_update(
    referral_id: uuid.UUID,
    body: AssignmentUpdate,
    session: SessionDep,
    principal: Annotated[Principal, requires("assignments:report")],
) -> AssignmentUpdateResult:
    referral = await session.get(Referral, referral_id, with_for_update=True)
    if referral is None:
        raise ReferralNotFound(f"No referral has the id {referral_id}.")
    applied = await team_updates.apply_update(session, referral, body, principal.client_id)
    record_access(
        session,
        client_id=principal.client_id,
        action="referral.assignment_update",
        resource_type="referral",
        resource_id=referral.id,
    )
    return AssignmentUpdateResult(referral_id=referral.id, status=referral.status, applied=applied)


async def _visible(
    session: AsyncSession, referral_id: uuid.UUID, principal: Principal, action: str
) -> Referral:
    """The referral, audited. A refused or missing one is audited too (committed before the
    refusal, which rolls the rest back) and answered alike, so that a client cannot learn
    whether a referral exists."""
    referral = await service.visible_referral(session, referral_id, principal)
    outcome = "allowed" if referral is not None else "denied"
    record_access(
        session,
        client_id=principal.client_id,
        action=action,
        resource_type="referral",
        resource_id=referral_id,
        outcome=outcome,
    )
    if referral is None:
        await session.commit()
        raise ReferralNotFound(f"No referral {referral_id} is visible to this client.")
    return referral


async def _read(session: AsyncSession, referral: Referral) -> ReferralRead:
    assignments = await service.assignments_of(session, referral.id)
    reads = [
        AssignmentRead(
            kind=a.kind,
            team=TeamRead(id=a.team_id, code=a.team_code, name=a.team_name, team_type=a.team_type),
            assignment_id=a.assignment_id,
            status=a.status,
            planned_first_contact_at=a.planned_first_contact_at,
            first_contact_at=a.first_contact_at,
            created_at=a.created_at,
        )
        for a in assignments
    ]
    care = next((read.team for read in reads if read.kind == "care"), None)
    return ReferralRead(
        id=referral.id,
        status=referral.status,
        channel=referral.channel,
        urgency=referral.urgency,
        needs=referral.needs,
        red_flags=referral.red_flags,
        patient=PatientRead.from_row(referral),
        safeguarding=SafeguardingIn.model_validate(referral.safeguarding),
        consent=ConsentIn.model_validate(referral.consent),
        reason=referral.reason,
        risk=RiskMarkers.model_validate(referral.risk),
        referrer=ReferrerIn(
            organisation=referral.referrer_organisation, reference=referral.referrer_reference
        ),
        routing=_routing(referral),
        team=care,
        assignments=reads,
        created_at=referral.created_at,
        updated_at=referral.updated_at,
    )


def _routing(referral: Referral) -> RoutingRead | None:
    if referral.decision_id is None or referral.pathway is None:
        return None
    escalations = [item["escalation"] for item in (referral.routing or {}).get("escalations", [])]
    target = referral.response_target_seconds
    return RoutingRead(
        decision_id=referral.decision_id,
        pathway=referral.pathway,
        priority=referral.priority or 0,
        response_target=timedelta(seconds=target) if target is not None else None,
        reason=referral.routing_reason or "",
        escalations=escalations,
    )
