"""HTTP API of the teams service."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import AwareDatetime

from services.shared.auth import Principal, requires
from services.shared.clock import NowDep
from services.shared.db import SessionDep
from services.shared.identifiers import OdsCode, PostcodeDistrict
from services.shared.problems import ValidationFailed, problem_responses
from services.shared.vocabulary import AssignmentKind, Escalation, Pathway
from services.teams import resolver, service
from services.teams.problems import TeamNotFound, UnknownTeam
from services.teams.schemas import (
    AssignmentCreate,
    AssignmentRead,
    CaseloadRead,
    ResolutionRead,
    ResolutionStep,
    TeamRead,
    TeamSummary,
)
from services.teams.settings import TeamsSettings

router = APIRouter(prefix="/v1")


@router.get("/resolve", tags=["directory"], summary="The team that serves a patient for a pathway")
async def resolve_team(
    request: Request,
    session: SessionDep,
    now: NowDep,
    _: Annotated[Principal, requires("directory:read")],
    practice: Annotated[OdsCode | None, Query(description="Registered practice ODS code")] = None,
    district: Annotated[
        PostcodeDistrict | None,
        Query(description="Postcode district: the fallback for an unknown practice"),
    ] = None,
    pathway: Pathway | None = None,
    escalation: Escalation | None = None,
    at: Annotated[
        AwareDatetime | None, Query(description="When the case arrives; now if absent")
    ] = None,
) -> ResolutionRead:
    if (pathway is None) == (escalation is None):
        raise ValidationFailed(
            "Give exactly one of pathway or escalation.",
            errors=[
                {
                    "in": "query",
                    "field": "pathway",
                    "reason": "exactly one of pathway or escalation",
                }
            ],
        )
    settings: TeamsSettings = request.app.state.settings
    availability = resolver.Availability(
        at=at or now, capacity_max_age=timedelta(seconds=settings.capacity_max_age_seconds)
    )
    resolution = await resolver.resolve(
        session,
        practice_ods=practice,
        district=district,
        availability=availability,
        pathway=pathway,
        escalation=escalation,
    )
    return ResolutionRead(
        outcome=resolution.outcome,
        team=TeamSummary.model_validate(resolution.team) if resolution.team else None,
        linked_worker=resolution.linked_worker,
        locality_code=resolution.locality.code if resolution.locality else None,
        explanation=[
            ResolutionStep(code=s.code, message=s.message) for s in resolution.explanation
        ],
    )


@router.get("/teams", tags=["directory"], summary="Active teams")
async def list_teams(
    session: SessionDep, _: Annotated[Principal, requires("directory:read")]
) -> list[TeamRead]:
    return [await service.team_read(session, team) for team in await service.list_teams(session)]


@router.get("/teams/{team_id}", tags=["directory"], responses=problem_responses(TeamNotFound))
async def get_team(
    team_id: uuid.UUID, session: SessionDep, _: Annotated[Principal, requires("directory:read")]
) -> TeamRead:
    return await service.team_read(session, await service.get_team(session, team_id))


@router.post(
    "/assignments",
    tags=["caseloads"],
    status_code=status.HTTP_201_CREATED,
    summary="Put a case on a team's caseload (idempotent per referral, team and kind)",
    responses={
        200: {"model": AssignmentRead, "description": "Already assigned"},
        **problem_responses(UnknownTeam),
    },
)
async def create_assignment(
    body: AssignmentCreate,
    response: Response,
    session: SessionDep,
    principal: Annotated[Principal, requires("assignments:create")],
) -> AssignmentRead:
    assignment, created = await service.assign(session, body, principal.client_id)
    await session.flush()
    if not created:
        response.status_code = status.HTTP_200_OK
    return AssignmentRead.model_validate(assignment)


@router.get(
    "/teams/{team_id}/caseload", tags=["caseloads"], responses=problem_responses(TeamNotFound)
)
async def get_caseload(
    team_id: uuid.UUID,
    session: SessionDep,
    _: Annotated[Principal, requires("caseload:manage")],
    status_filter: Annotated[
        str | None, Query(alias="status", max_length=16, pattern=r"^[a-z_]+$")
    ] = None,
    kind: AssignmentKind | None = None,
) -> CaseloadRead:
    team = await service.get_team(session, team_id)
    items = await service.caseload(session, team, status=status_filter, kind=kind)
    return CaseloadRead(
        team=TeamSummary.model_validate(team),
        items=[AssignmentRead.model_validate(item) for item in items],
    )
