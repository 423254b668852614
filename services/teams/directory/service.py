"""Use cases of the directory's teams: reading them, their capacity, who may manage them.
They flush; the request edge commits."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.shared.auth import Principal
from services.teams.directory.models import Locality, Team
from services.teams.directory.problems import TeamNotFound, TeamNotPermitted
from services.teams.directory.resolver import capacity_known
from services.teams.directory.schemas import CapacityRead, CapacityUpdate, CoveredPractice, TeamRead


def may_manage(principal: Principal, team: Team) -> bool:
    """Only a client acting for the team (or a directory administrator) may manage it."""
    return team.code in principal.teams or "directory:admin" in principal.scopes


def require_team(principal: Principal, team: Team) -> None:
    if not may_manage(principal, team):
        raise TeamNotPermitted(f"This client does not act for {team.name}.")


async def get_team(session: AsyncSession, code: str) -> Team:
    """The team of a code (a retired one too: its caseload may still hold cases)."""
    team = await session.scalar(select(Team).where(Team.code == code))
    if team is None:
        raise TeamNotFound(f"No team has the code {code}.")
    return team


async def list_teams(session: AsyncSession, *, after_code: str | None, limit: int) -> list[Team]:
    """Active teams by code, from after ``after_code``, ``limit`` of them."""
    query = select(Team).where(Team.retired_at.is_(None))
    if after_code is not None:
        query = query.where(Team.code > after_code)
    return list(await session.scalars(query.order_by(Team.code).limit(limit)))


async def team_read(
    session: AsyncSession, team: Team, now: datetime, capacity_max_age: timedelta
) -> TeamRead:
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
        disciplines=team.disciplines,
        pathways=team.pathways,
        hours=team.hours,
        endpoint_url=team.endpoint_url,
        capacity=capacity_read(team, now, capacity_max_age),
    )


def capacity_read(team: Team, now: datetime, max_age: timedelta) -> CapacityRead:
    """Capacity as last reported; older than ``max_age`` it is reported as unknown."""
    known = capacity_known(team, now, max_age)
    return CapacityRead(
        available=team.capacity_available if known else None,
        maximum=team.capacity_maximum,
        unit=team.capacity_unit,
        updated=team.capacity_updated_at,
        known=known,
        operating_status=team.operating_status,
    )


def update_capacity(team: Team, body: CapacityUpdate, now: datetime) -> None:
    team.capacity_available = body.available
    team.capacity_maximum = body.maximum
    team.capacity_unit = body.unit
    team.capacity_updated_at = now
    team.operating_status = body.operating_status
