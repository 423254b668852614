"""HTTP API of the directory: resolving a team, reading teams, and teams reporting capacity."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared import pagination
from services.shared.auth import Principal, requires
from services.shared.clock import Moment, NowDep
from services.shared.db import SessionDep
from services.shared.identifiers import OdsCode, PostcodeDistrict
from services.shared.pagination import CursorQuery, Limit
from services.shared.problems import ValidationFailed, problem_responses
from services.shared.state import state_of
from services.shared.vocabulary import Escalation, Pathway
from services.teams.directory import resolver, service
from services.teams.directory.problems import TeamNotFound, TeamNotPermitted
from services.teams.directory.schemas import (
    CapacityRead,
    CapacityUpdate,
    LocalityRead,
    ResolutionBatch,
    ResolutionBatchRead,
    ResolutionQuery,
    ResolutionRead,
    ResolutionStep,
    TeamPage,
    TeamRead,
    TeamSummary,
)
from services.teams.state import TeamsState

router = APIRouter(prefix="/v1", tags=["directory"])


def _capacity_max_age(request: Request) -> timedelta:
    settings = state_of(request.app, TeamsState).settings
    return timedelta(seconds=settings.capacity_max_age_seconds)


@router.get(
    "/resolve",
    summary="The team that serves a patient for a pathway or escalation, now or at a time",
)
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
    at: Annotated[Moment | None, Query(description="When the case arrives; now if absent")] = None,
    exclude: Annotated[
        list[uuid.UUID] | None,
        Query(max_length=20, description="Teams already tried for this case, passed over"),
    ] = None,
) -> ResolutionRead:
    if (pathway is None) == (escalation is None):
        error = {
            "in": "query",
            "field": "pathway",
            "reason": "exactly one of pathway or escalation",
        }
        raise ValidationFailed("Give exactly one of pathway or escalation.", errors=[error])
    query = ResolutionQuery(
        practice=practice,
        district=district,
        pathway=pathway,
        escalation=escalation,
        at=at,
        exclude=exclude or [],
    )
    return await _answer(session, query, now, _capacity_max_age(request))


@router.post(
    "/resolutions",
    summary="Many resolutions in one request: a team, or only a locality, for each query",
    description=(
        "Answers each query as `GET /v1/resolve` would (or, with neither `pathway` nor "
        "`escalation`, as `GET /v1/locate` would, with outcome `no_assignment`), in the order "
        "asked. For callers that route many referrals at once."
    ),
)
async def resolve_many(
    body: ResolutionBatch,
    request: Request,
    session: SessionDep,
    now: NowDep,
    _: Annotated[Principal, requires("directory:read")],
) -> ResolutionBatchRead:
    max_age = _capacity_max_age(request)
    return ResolutionBatchRead(
        items=[await _answer(session, query, now, max_age) for query in body.queries]
    )


async def _answer(
    session: AsyncSession, query: ResolutionQuery, now: datetime, capacity_max_age: timedelta
) -> ResolutionRead:
    if query.pathway is None and query.escalation is None:
        steps: list[resolver.Step] = []
        __, locality = await resolver.locate(session, query.practice, query.district, steps)
        resolution = resolver.Resolution("no_assignment", locality=locality, explanation=steps)
    else:
        availability = resolver.Availability(
            at=query.at or now,
            capacity_max_age=capacity_max_age,
            excluded=frozenset(query.exclude),
        )
        resolution = await resolver.resolve(
            session,
            practice_ods=query.practice,
            district=query.district,
            availability=availability,
            pathway=query.pathway,
            escalation=query.escalation,
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


@router.get("/locate", summary="The locality a practice (or else a postcode district) is in")
async def locate(
    session: SessionDep,
    _: Annotated[Principal, requires("directory:read")],
    practice: Annotated[OdsCode | None, Query(description="Registered practice ODS code")] = None,
    district: Annotated[PostcodeDistrict | None, Query(description="Postcode district")] = None,
) -> LocalityRead:
    steps: list[resolver.Step] = []
    __, locality = await resolver.locate(session, practice, district, steps)
    return LocalityRead(
        locality_code=locality.code if locality else None,
        explanation=[ResolutionStep(code=step.code, message=step.message) for step in steps],
    )


TEAMS = "teams"
TeamCodePath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="The team's code in the directory (as `code` on every team read)",
    ),
]


@router.get(
    "/teams",
    summary="Active teams, by code",
    responses=problem_responses(pagination.InvalidCursor),
)
async def list_teams(
    request: Request,
    session: SessionDep,
    now: NowDep,
    _: Annotated[Principal, requires("directory:read")],
    cursor: CursorQuery = None,
    limit: Limit = 50,
) -> TeamPage:
    max_age = _capacity_max_age(request)
    start = pagination.decode(cursor, TEAMS, (str,))
    teams = await service.list_teams(
        session, after_code=start[0] if start else None, limit=limit + 1
    )
    found, next_cursor = pagination.page_of(teams, limit, TEAMS, lambda team: (team.code,))
    return TeamPage(
        items=[await service.team_read(session, team, now, max_age) for team in found],
        next_cursor=next_cursor,
    )


@router.get("/teams/{team_code}", responses=problem_responses(TeamNotFound))
async def get_team(
    team_code: TeamCodePath,
    request: Request,
    session: SessionDep,
    now: NowDep,
    _: Annotated[Principal, requires("directory:read")],
) -> TeamRead:
    team = await service.get_team(session, team_code)
    return await service.team_read(session, team, now, _capacity_max_age(request))


@router.put(
    "/teams/{team_code}/capacity",
    summary="A team reports its capacity and operating status",
    responses=problem_responses(TeamNotFound, TeamNotPermitted),
)
async def put_capacity(
    team_code: TeamCodePath,
    body: CapacityUpdate,
    request: Request,
    session: SessionDep,
    now: NowDep,
    principal: Annotated[Principal, requires("caseload:manage")],
) -> CapacityRead:
    team = await service.get_team(session, team_code)
    service.require_team(principal, team)
    service.update_capacity(team, body, now)
    return service.capacity_read(team, now, _capacity_max_age(request))
