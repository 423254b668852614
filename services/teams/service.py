"""Use cases of the teams service. They flush; the request edge commits."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.teams.models import Assignment, Locality, Team
from services.teams.problems import TeamNotFound, UnknownTeam
from services.teams.schemas import AssignmentCreate, CoveredPractice, TeamRead


async def get_team(session: AsyncSession, team_id: uuid.UUID) -> Team:
    team = await session.get(Team, team_id)
    if team is None:
        raise TeamNotFound(f"No team has the id {team_id}.")
    return team


async def list_teams(session: AsyncSession) -> list[Team]:
    return list(
        await session.scalars(select(Team).where(Team.retired_at.is_(None)).order_by(Team.code))
    )


async def team_read(session: AsyncSession, team: Team) -> TeamRead:
    locality = await session.get(Locality, team.locality_id) if team.locality_id else None
    return TeamRead(
        id=team.id,
        code=team.code,
        name=team.name,
        team_type=team.team_type,
        locality_code=locality.code if locality else None,
        backup_team_id=team.backup_team_id,
        practices=[
            CoveredPractice(ods_code=cover.practice.ods_code, linked_worker=cover.linked_worker)
            for cover in team.coverage
        ],
    )


async def assign(
    session: AsyncSession, request: AssignmentCreate, assigned_by: str
) -> tuple[Assignment, bool]:
    """Put a case on a team's caseload. Returns the assignment and whether it is new: a retry of
    the same referral, team and kind returns the first assignment instead of a second one."""
    existing = await _find_assignment(session, request)
    if existing is not None:
        return existing, False
    team = await session.get(Team, request.team_id)
    if team is None or team.retired_at is not None:
        raise UnknownTeam(f"No active team has the id {request.team_id}.")
    assignment = Assignment(
        referral_id=request.referral_id,
        team_id=request.team_id,
        kind=request.kind,
        pathway=request.pathway,
        urgency=request.urgency,
        decision_id=request.decision_id,
        assigned_by=assigned_by,
    )
    try:
        async with session.begin_nested():
            session.add(assignment)
    except IntegrityError:
        # A concurrent retry won the race; its assignment is the one.
        existing = await _find_assignment(session, request)
        if existing is None:
            raise
        return existing, False
    return assignment, True


async def _find_assignment(session: AsyncSession, request: AssignmentCreate) -> Assignment | None:
    return await session.scalar(
        select(Assignment).where(
            Assignment.referral_id == request.referral_id,
            Assignment.team_id == request.team_id,
            Assignment.kind == request.kind,
        )
    )


async def caseload(
    session: AsyncSession, team: Team, *, status: str | None, kind: str | None
) -> list[Assignment]:
    query = select(Assignment).where(Assignment.team_id == team.id)
    if status is not None:
        query = query.where(Assignment.status == status)
    if kind is not None:
        query = query.where(Assignment.kind == kind)
    return list(await session.scalars(query.order_by(Assignment.created_at, Assignment.id)))
