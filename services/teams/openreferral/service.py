"""What the feed publishes, found: active teams and the practices they cover, the organisation.

A directory holds tens or hundreds of teams, so the feed reads the active ones and filters
them here: the filters over JSON columns (pathways, disciplines, hours, districts) then run the
same on PostgreSQL and SQLite. Only the time of change is left to the database.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.teams.directory.models import Locality, Organisation, Team, TeamPractice
from services.teams.openreferral.problems import (
    OrganizationNotFound,
    ServiceAtLocationNotFound,
    ServiceNotFound,
)
from services.teams.openreferral.records import (
    description,
    service_at_location_id,
    weekly_ranges,
)
from services.teams.openreferral.taxonomies import team_terms


@dataclass(frozen=True)
class Published:
    """The localities and organisations behind the teams of a page, read once for the page."""

    localities: dict[uuid.UUID, Locality]
    organisations: dict[uuid.UUID, Organisation]

    @property
    def active_localities(self) -> list[Locality]:
        active = (row for row in self.localities.values() if row.retired_at is None)
        return sorted(active, key=lambda row: row.code)

    def locality_of(self, team: Team) -> Locality | None:
        return self.localities.get(team.locality_id) if team.locality_id else None

    def organisation_of(self, team: Team) -> Organisation | None:
        locality = self.locality_of(team)
        # County-wide teams serve every active locality, for their one organisation.
        served = [locality] if locality is not None else self.active_localities
        ids = {row.organisation_id for row in served if row.organisation_id is not None}
        return self.organisations.get(ids.pop()) if len(ids) == 1 else None

    def districts_of(self, team: Team) -> list[str]:
        locality = self.locality_of(team)
        served = [locality] if locality is not None else self.active_localities
        return [district for row in served for district in row.postcode_districts]


@dataclass(frozen=True)
class ServiceQuery:
    """The filters HSDS and the UK profile define for services; None is no filter."""

    search: str | None = None
    modified_after: datetime | None = None
    organization_id: uuid.UUID | None = None
    taxonomy_term_id: uuid.UUID | None = None
    taxonomy_id: uuid.UUID | None = None
    # A schedule on this day (RFC 5545: MO...SU) opening at or after start_time and closing
    # at or before end_time, as the UK profile words them.
    day: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    # The postcode district a service must cover (of the postcode given).
    district: str | None = None
    service_id: uuid.UUID | None = None

    def matches(self, team: Team, published: Published) -> bool:
        organisation = published.organisation_of(team)
        terms = team_terms(team)
        return (
            self._found_by_search(team, published)
            and self.organization_id in (None, organisation.id if organisation else None)
            and self.taxonomy_term_id in (None, *(term.id for term in terms))
            and self.taxonomy_id in (None, *(term.taxonomy.id for term in terms))
            and (self.district is None or self.district in published.districts_of(team))
            and self.service_id in (None, team.id)
            and self._open_as_asked(team)
        )

    def _found_by_search(self, team: Team, published: Published) -> bool:
        if not self.search:
            return True
        words = [team.name, description(team, published.locality_of(team))]
        words += [term.name for term in team_terms(team)]
        return any(self.search.casefold() in word.casefold() for word in words)

    def _open_as_asked(self, team: Team) -> bool:
        if self.day is None and self.start_time is None and self.end_time is None:
            return True
        return any(
            (self.day is None or opening.byday == self.day)
            and (self.start_time is None or opening.opens_at >= self.start_time)
            and (self.end_time is None or opening.closes_at <= self.end_time)
            for opening in weekly_ranges(team)
        )


async def read_published(session: AsyncSession) -> Published:
    return Published(
        localities={row.id: row for row in await session.scalars(select(Locality))},
        organisations={row.id: row for row in await session.scalars(select(Organisation))},
    )


async def find_teams(session: AsyncSession, query: ServiceQuery) -> tuple[Published, list[Team]]:
    """The active teams that match, in the order of their codes."""
    statement = select(Team).where(Team.retired_at.is_(None)).order_by(Team.code)
    if query.modified_after is not None:
        statement = statement.where(Team.last_modified_at >= query.modified_after)
    teams = list(await session.scalars(statement))
    published = await read_published(session)
    return published, [team for team in teams if query.matches(team, published)]


async def get_team(session: AsyncSession, team_id: uuid.UUID) -> tuple[Published, Team]:
    team = await session.get(Team, team_id)
    if team is None or team.retired_at is not None:
        raise ServiceNotFound(f"No active service has the id {team_id}.")
    return await read_published(session), team


def coverage(team: Team) -> list[TeamPractice]:
    """The active practices a team covers, by ODS code."""
    covers = (cover for cover in team.coverage if cover.practice.retired_at is None)
    return sorted(covers, key=lambda cover: cover.practice.ods_code)


async def find_coverage(session: AsyncSession, query: ServiceQuery) -> list[TeamPractice]:
    """Where the matching teams work: each active practice each covers."""
    _, teams = await find_teams(session, query)
    return [cover for team in teams for cover in coverage(team)]


async def get_coverage(session: AsyncSession, link_id: uuid.UUID) -> TeamPractice:
    for cover in await find_coverage(session, ServiceQuery()):
        if service_at_location_id(cover) == link_id:
            return cover
    raise ServiceAtLocationNotFound(f"No service at a location has the id {link_id}.")


async def find_organisations(session: AsyncSession, search: str | None) -> list[Organisation]:
    organisations = await session.scalars(select(Organisation).order_by(Organisation.code))
    return [row for row in organisations if not search or search.casefold() in row.name.casefold()]


async def get_organisation(session: AsyncSession, organisation_id: uuid.UUID) -> Organisation:
    organisation = await session.get(Organisation, organisation_id)
    if organisation is None:
        raise OrganizationNotFound(f"No organization has the id {organisation_id}.")
    return organisation
