"""HTTP API of referrals."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.auth import Principal, requires
from services.shared.clock import NowDep
from services.shared.db import SessionDep
from services.shared.problems import ConcurrentChange, problem_responses
from services.shared.state import state_of
from services.shared.vocabulary import AssignmentKind, AssignmentStatus
from services.spa.api import WakeupsDep
from services.spa.audit import record_access
from services.spa.referrals import clinical, idempotency, intake, service, team_updates, waiting
from services.spa.referrals.models import Referral, ReferralAssignment
from services.spa.referrals.problems import (
    AssignmentNoLongerHeld,
    AssignmentUnknown,
    ChannelNotPermitted,
    IdempotencyKeyRepeated,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    IllegalTransition,
    ReferralNotFound,
    UpdateOutOfOrder,
)
from services.spa.referrals.schemas import (
    AdviceIn,
    AssignmentRead,
    AssignmentUpdate,
    AssignmentUpdateResult,
    CancellationCreate,
    CodedConcept,
    ConsentIn,
    CountyContactIn,
    Nhs111Details,
    PatientRead,
    ReferralCreate,
    ReferralRead,
    ReferrerIn,
    RefusalRead,
    RiskMarkers,
    RoutingRead,
    SafeguardingIn,
    TeamRead,
    Timeline,
    TimelineEntry,
)
from services.spa.state import SpaState

router = APIRouter(prefix="/v1/referrals", tags=["referrals"])


async def _request_key(
    request: Request,
    # Declared for the OpenAPI document; every value sent is read from the request itself.
    _: Annotated[
        str | None,
        Header(
            alias=idempotency.HEADER,
            description="Unique per referral (a UUID): 1 to 255 visible ASCII characters",
            # Documented, not enforced here: require_key answers its own problem.
            json_schema_extra={"pattern": idempotency.KEY_PATTERN},
        ),
    ] = None,
) -> str:
    return idempotency.require_key(request.headers.getlist(idempotency.HEADER))


KeyDep = Annotated[str, Depends(_request_key)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ReferralRead,
    summary="Refer a person to the SPA; routing follows once the referral is stored",
    description=(
        "Send an `Idempotency-Key` with every referral: a retry with the same key and body gets "
        "the first answer again (with `Idempotent-Replayed: true`), never a second referral. "
        "With `Prefer: wait=N` (N up to 30 seconds) the answer waits for the routing outcome: "
        "201 with it if it comes in time, else 202 with a `Location` to poll."
    ),
    responses={
        202: {"model": ReferralRead, "description": "Stored; the outcome is not known yet"},
        **problem_responses(
            ChannelNotPermitted,
            # Both are 400s: the one named last is the one the document describes.
            IdempotencyKeyRepeated,
            IdempotencyKeyRequired,
            IdempotencyKeyReused,
            ConcurrentChange,
        ),
    },
)
async def create_referral(
    body: ReferralCreate,
    request: Request,
    wakeups: WakeupsDep,
    session: SessionDep,
    now: NowDep,
    principal: Annotated[Principal, requires("referrals:create")],
    key: KeyDep,
    prefer: Annotated[str | None, Header(description="wait=N: wait N seconds for routing")] = None,
) -> Response:
    settings = state_of(request.app, SpaState).settings
    wait = waiting.preferred_wait(prefer, settings.max_prefer_wait_seconds)
    taken = await intake.take_in(
        session,
        body,
        principal,
        key,
        now,
        settings=settings,
        wait=wait,
        wait_for_outcome=lambda referral_id, wait: wait_for_outcome(request, referral_id, wait),
        wake_router=wakeups.routing,
    )
    # Answered as committed, a referral this request just made holds no assignment yet.
    read = await referral_read(session, taken.referral, principal, None if taken.settled else [])
    headers = {"Location": f"/v1/referrals/{read.id}"}
    if taken.replayed:
        headers["Idempotent-Replayed"] = "true"
    elif wait is not None:
        # Honoured: the answer carries the outcome if it came within the (capped) wait.
        headers["Preference-Applied"] = f"wait={wait}"
    return JSONResponse(
        read.model_dump(mode="json"), status_code=taken.status_code, headers=headers
    )


async def wait_for_outcome(request: Request, referral_id: uuid.UUID, wait: int) -> str:
    """The referral's status once it leaves the in-flight ones, or after ``wait`` seconds."""
    sessionmaker = state_of(request.app, SpaState).sessionmaker

    async def current_status() -> str:
        async with sessionmaker() as reader:
            found = await reader.scalar(select(Referral.status).where(Referral.id == referral_id))
            return str(found)

    watch = state_of(request.app, SpaState).status_watch
    return await watch.wait(referral_id, wait, current_status)


@router.post(
    "/{referral_id}/cancellation",
    summary="The referrer withdraws its referral; teams holding it for care are told",
    responses=problem_responses(ReferralNotFound, IllegalTransition, ConcurrentChange),
)
async def cancel_referral(
    referral_id: uuid.UUID,
    body: CancellationCreate,
    request: Request,
    wakeups: WakeupsDep,
    background: BackgroundTasks,
    session: SessionDep,
    principal: Annotated[Principal, requires("referrals:create")],
) -> ReferralRead:
    referral = await session.get(Referral, referral_id)
    own = referral is not None and referral.referrer_client_id == principal.client_id
    record_access(
        session,
        client_id=principal.client_id,
        action="referral.cancel",
        resource_type="referral",
        resource_id=referral_id,
        outcome="allowed" if own else "denied",
    )
    if referral is None or not own:
        raise ReferralNotFound(f"No referral {referral_id} made by this client.")
    service.cancel(session, referral, body, principal.client_id)
    background.add_task(wakeups.routing)
    return await referral_read(session, referral, principal)


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
    referral = await visible_or_not_found(session, referral_id, principal, "referral.read")
    return await referral_read(session, referral, principal)


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
    referral = await visible_or_not_found(session, referral_id, principal, "referral.timeline.read")
    events = await service.timeline_of(session, referral.id)
    if not service.is_call_handler(principal):
        events = [event for event in events if event.event_type != service.DUPLICATE_LINKED]
    return Timeline(
        referral_id=referral.id,
        events=[TimelineEntry.model_validate(event, from_attributes=True) for event in events],
    )


@router.post(
    "/{referral_id}/assignment-updates",
    summary="A team's change to its assignment, reported by the teams service",
    responses=problem_responses(
        ReferralNotFound, AssignmentUnknown, UpdateOutOfOrder, AssignmentNoLongerHeld
    ),
)
async def post_assignment_update(
    referral_id: uuid.UUID,
    body: AssignmentUpdate,
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    principal: Annotated[Principal, requires("assignments:report")],
) -> AssignmentUpdateResult:
    referral = await session.get(Referral, referral_id, with_for_update=True)
    if referral is None:
        raise ReferralNotFound(f"No referral has the id {referral_id}.")
    applied = await team_updates.apply_update(session, referral, body, principal.client_id)
    background.add_task(state_of(request.app, SpaState).status_watch.changed, referral.id)
    record_access(
        session,
        client_id=principal.client_id,
        action="referral.assignment_update",
        resource_type="referral",
        resource_id=referral.id,
    )
    return AssignmentUpdateResult(referral_id=referral.id, status=referral.status, applied=applied)


async def visible_or_not_found(
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
        raise ReferralNotFound(f"No referral {referral_id} is visible to this client.")
    return referral


async def referral_read(
    session: AsyncSession,
    referral: Referral,
    principal: Principal,
    assignments: list[ReferralAssignment] | None = None,
) -> ReferralRead:
    handler = service.is_call_handler(principal)
    if assignments is None:
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
    # The team holding the case for care: the latest one it was not withdrawn from.
    holding = [
        read.team
        for read in reads
        if read.kind == AssignmentKind.CARE and read.status != AssignmentStatus.WITHDRAWN
    ]
    care = holding[-1] if holding else None
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
        routing=_routing(referral, care.id if care else None),
        refusal=_refusal(referral),
        team=care,
        assignments=reads,
        nhs111=_nhs111(referral),
        contact=_contact(referral),
        advice=AdviceIn.model_validate(referral.advice) if referral.advice else None,
        locality_code=referral.locality_code,
        # Why a case waits, and what it may duplicate, are for call handlers only: a referrer
        # must not learn of another referrer's referral.
        queue_reason=referral.queue_reason if handler else None,
        possible_duplicate_of=referral.possible_duplicate_of if handler else None,
        unmapped_codes=[
            CodedConcept.model_validate(code)
            for code in referral.channel_details.get("unmapped_codes", [])
        ],
        clinical=await clinical.shown_to(session, referral, principal, assignments),
        created_at=referral.created_at,
        updated_at=referral.updated_at,
    )


def _routing(referral: Referral, care_team_id: uuid.UUID | None) -> RoutingRead | None:
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
        linked_worker=service.linked_worker(referral, care_team_id),
        why_this_team=service.why_this_team(referral, care_team_id),
    )


def _refusal(referral: Referral) -> RefusalRead | None:
    code = (referral.routing or {}).get("refuse")
    if code is None:
        return None
    return RefusalRead(code=code, detail=referral.routing_reason or "")


def _nhs111(referral: Referral) -> Nhs111Details | None:
    details = referral.channel_details.get("nhs111")
    return Nhs111Details.model_validate(details) if details is not None else None


def _contact(referral: Referral) -> CountyContactIn | None:
    contact = referral.channel_details.get("contact")
    if contact is None:
        return None
    advice = referral.advice if contact["outcome"] == "advice_given" else None
    return CountyContactIn.model_validate({**contact, "advice": advice})
