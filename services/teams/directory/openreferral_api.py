"""Open Referral UK (HSDS 3.0) read API over the directory.

Each active team is one HSDS service; the GP practices it covers are its locations. HSDS gives
every object an id, so the objects derived from a team (schedules, service areas, capacity,
service-at-locations) get name-based UUIDs: the same on every request and across reloads.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager, raiseload

from services.shared.auth import Principal, requires
from services.shared.db import SessionDep
from services.shared.problems import problem_responses
from services.teams.directory.hours import DAYS, ServiceHours
from services.teams.directory.models import Locality, Practice, Team, TeamPractice
from services.teams.directory.openreferral_schemas import (
    AddressRead,
    CapacityUnitRead,
    LocationRead,
    PageRead,
    ScheduleRead,
    ServiceAreaRead,
    ServiceAtLocationPage,
    ServiceAtLocationRead,
    ServiceCapacityRead,
    ServiceDetailRead,
    ServicePage,
    ServiceRead,
    Weekday,
)
from services.teams.directory.problems import ServiceNotFound

router = APIRouter(prefix="/openreferral", tags=["open referral"])

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:spa-platform:openreferral")
BYDAY: dict[str, Weekday] = {
    "mon": "MO",
    "tue": "TU",
    "wed": "WE",
    "thu": "TH",
    "fri": "FR",
    "sat": "SA",
    "sun": "SU",
}
TEAM_TYPE_LABELS = {
    "plmdt": "PLMDT",
    "locality_integrated": "Locality integrated health and social care team",
    "integrated": "Integrated health and social care team",
    "equipment": "Community equipment service",
    "cru": "Central Referral Unit (safeguarding)",
    "county_contact": "County contact centre",
    "out_of_hours": "Out-of-hours service",
}

PageNumber = Annotated[int, Query(ge=1, le=100_000, description="Page to return, from 1")]
PerPage = Annotated[int, Query(ge=1, le=100, description="Items per page")]
Reader = Annotated[Principal, requires("directory:read")]
PageT = TypeVar("PageT", bound=PageRead)


def derived_id(*parts: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, "/".join(str(part) for part in parts))


@router.get("/services", summary="Active teams as HSDS services, a page at a time")
async def list_services(
    session: SessionDep,
    _: Reader,
    page: PageNumber = 1,
    per_page: PerPage = 50,
    text: Annotated[
        str | None, Query(max_length=100, description="Part of the name, any case")
    ] = None,
) -> ServicePage:
    query = select(Team).where(Team.retired_at.is_(None))
    if text:
        query = query.where(Team.name.icontains(text, autoescape=True))
    total = await _count(session, query)
    teams = await session.scalars(
        query.options(raiseload(Team.coverage))
        .order_by(Team.code)
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    context = await _directory_context(session)
    services = [_service(team, context) for team in teams]
    return _page(ServicePage, total, page, per_page, services)


@router.get(
    "/services/{id}",
    summary="One active team as an HSDS service, with the practices it covers",
    responses=problem_responses(ServiceNotFound),
)
async def get_service(
    service_id: Annotated[uuid.UUID, Path(alias="id")], session: SessionDep, _: Reader
) -> ServiceDetailRead:
    team = await session.get(Team, service_id)
    if team is None or team.retired_at is not None:
        raise ServiceNotFound(f"No active service has the id {service_id}.")
    service = _service(team, await _directory_context(session))
    covered = sorted(
        (cover.practice for cover in team.coverage if cover.practice.retired_at is None),
        key=lambda practice: practice.ods_code,
    )
    return ServiceDetailRead.model_validate(
        {
            **service.model_dump(),
            "service_at_locations": [_service_at_location(team.id, p) for p in covered],
        }
    )


@router.get(
    "/service_at_locations", summary="Where each active team works: the practices it covers"
)
async def list_service_at_locations(
    session: SessionDep,
    _: Reader,
    page: PageNumber = 1,
    per_page: PerPage = 50,
    service_id: Annotated[uuid.UUID | None, Query(description="Only this service")] = None,
) -> ServiceAtLocationPage:
    query = (
        select(TeamPractice)
        .join(Team, TeamPractice.team_id == Team.id)
        .join(Practice, TeamPractice.practice_id == Practice.id)
        .where(Team.retired_at.is_(None), Practice.retired_at.is_(None))
    )
    if service_id is not None:
        query = query.where(TeamPractice.team_id == service_id)
    total = await _count(session, query)
    covers = await session.scalars(
        query.options(contains_eager(TeamPractice.practice))
        .order_by(Team.code, Practice.ods_code)
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    links = [_service_at_location(cover.team_id, cover.practice) for cover in covers]
    return _page(ServiceAtLocationPage, total, page, per_page, links)


async def _count(session: AsyncSession, query: Select[Any]) -> int:
    return int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _page(
    page_type: type[PageT], total: int, page: int, per_page: int, contents: Sequence[Any]
) -> PageT:
    total_pages = math.ceil(total / per_page)
    return page_type.model_validate(
        {
            "total_items": total,
            "total_pages": total_pages,
            "page_number": page,
            "size": len(contents),
            "first_page": page == 1,
            "last_page": page >= total_pages,
            "empty": not contents,
            "contents": contents,
        }
    )


@dataclass(frozen=True)
class _DirectoryContext:
    """The localities behind a page of services, read once for the whole page."""

    localities: dict[uuid.UUID, Locality]
    # County-wide teams serve every active locality, on behalf of their one organisation.
    county_districts: list[str]
    county_organisation_id: uuid.UUID | None

    def locality_of(self, team: Team) -> Locality | None:
        return self.localities.get(team.locality_id) if team.locality_id else None


async def _directory_context(session: AsyncSession) -> _DirectoryContext:
    localities = {row.id: row for row in await session.scalars(select(Locality))}
    active = sorted(
        (row for row in localities.values() if row.retired_at is None), key=lambda row: row.code
    )
    organisations = {row.organisation_id for row in active if row.organisation_id is not None}
    return _DirectoryContext(
        localities=localities,
        county_districts=[district for row in active for district in row.postcode_districts],
        county_organisation_id=organisations.pop() if len(organisations) == 1 else None,
    )


def _service(team: Team, context: _DirectoryContext) -> ServiceRead:
    locality = context.locality_of(team)
    label = TEAM_TYPE_LABELS.get(team.team_type, team.team_type)
    return ServiceRead(
        id=team.id,
        organization_id=locality.organisation_id if locality else context.county_organisation_id,
        name=team.name,
        description=f"{label} serving {locality.name if locality else 'the whole county'}",
        url=team.endpoint_url,
        status="temporarily closed" if team.operating_status == "closed" else "active",
        service_capacity=_capacities(team),
        schedules=_schedules(team),
        service_areas=[
            ServiceAreaRead(
                id=derived_id(team.id, "area", district),
                service_id=team.id,
                name=district,
                description=f"Postcode district {district}",
            )
            for district in (locality.postcode_districts if locality else context.county_districts)
        ],
    )


def _capacities(team: Team) -> list[ServiceCapacityRead]:
    if team.capacity_updated_at is None:
        return []
    unit = (
        CapacityUnitRead(id=derived_id("unit", team.capacity_unit), name=team.capacity_unit)
        if team.capacity_unit
        else None
    )
    return [
        ServiceCapacityRead(
            id=derived_id(team.id, "capacity"),
            service_id=team.id,
            available=team.capacity_available,
            maximum=team.capacity_maximum,
            unit=unit,
            updated=team.capacity_updated_at,
        )
    ]


def _schedules(team: Team) -> list[ScheduleRead]:
    """One weekly schedule per opening range; bank-holiday hours go in the description, as
    RFC 5545 rules cannot name England's bank holidays."""
    if team.hours is None:
        always = "UK local time. Open 24 hours, including bank holidays in England."
        return [_schedule(team.id, day, "00:00-24:00", always) for day in DAYS]
    hours = ServiceHours.model_validate(team.hours)
    bank_holidays = (
        f"bank holidays in England: {', '.join(sorted(hours.bank_holidays))}"
        if hours.bank_holidays
        else "closed on bank holidays in England"
    )
    note = f"UK local time; {bank_holidays}."
    return [
        _schedule(team.id, day, text, note) for day in DAYS for text in sorted(getattr(hours, day))
    ]


def _schedule(service_id: uuid.UUID, day: str, text: str, description: str) -> ScheduleRead:
    opens_at, closes_at = text.split("-")
    return ScheduleRead(
        id=derived_id(service_id, "schedule", day, text),
        service_id=service_id,
        byday=BYDAY[day],
        # HSDS times stop at 23:59; our ranges may run to the end of the day.
        opens_at=opens_at,
        closes_at="23:59" if closes_at == "24:00" else closes_at,
        description=description,
    )


def _service_at_location(service_id: uuid.UUID, practice: Practice) -> ServiceAtLocationRead:
    return ServiceAtLocationRead(
        id=derived_id(service_id, "at", practice.id),
        service_id=service_id,
        location_id=practice.id,
        location=LocationRead(
            id=practice.id,
            name=practice.name,
            external_identifier=practice.ods_code,
            addresses=[
                AddressRead(
                    id=derived_id(practice.id, "address"),
                    location_id=practice.id,
                    postal_code=practice.postcode,
                )
            ],
        ),
    )
