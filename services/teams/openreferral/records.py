"""The directory's rows as HSDS records.

Each active team is one HSDS service, provided by the county organisation; the GP practices it
covers are its locations; its locality's postcode districts are its service areas. Objects
derived from a team (schedules, service areas, capacity, service-at-locations, attributes) get
name-based UUIDs: the same on every request and across reloads.
"""

from __future__ import annotations

import uuid
from typing import NamedTuple

from services.teams.directory.hours import DAYS, ServiceHours
from services.teams.directory.models import Locality, Organisation, Team, TeamPractice
from services.teams.openreferral.schemas import (
    AttributeRead,
    CapacityUnitRead,
    ContactRead,
    LocationRead,
    OrganizationRead,
    ScheduleRead,
    ServiceAreaRead,
    ServiceAtLocationRead,
    ServiceCapacityRead,
    ServiceRead,
    TaxonomyRead,
    TaxonomyTermRead,
    Weekday,
)
from services.teams.openreferral.taxonomies import (
    Taxonomy,
    Term,
    derived_id,
    team_terms,
    team_type_label,
)

BYDAY: dict[str, Weekday] = {
    "mon": "MO",
    "tue": "TU",
    "wed": "WE",
    "thu": "TH",
    "fri": "FR",
    "sat": "SA",
    "sun": "SU",
}
WHOLE_DAY = "00:00-24:00"


class OpeningRange(NamedTuple):
    """One range of a team's weekly hours, e.g. ``mon``, ``08:00-20:00``."""

    day: str
    text: str

    @property
    def byday(self) -> Weekday:
        return BYDAY[self.day]

    @property
    def opens_at(self) -> str:
        return self.text.split("-")[0]

    @property
    def closes_at(self) -> str:
        # HSDS times stop at 23:59; our ranges may run to the end of the day.
        closes_at = self.text.split("-")[1]
        return "23:59" if closes_at == "24:00" else closes_at


def weekly_ranges(team: Team) -> list[OpeningRange]:
    """The team's weekly opening ranges; a team without hours is always open."""
    hours = ServiceHours.model_validate(team.hours) if team.hours is not None else None
    return [
        OpeningRange(day, text)
        for day in DAYS
        for text in (sorted(getattr(hours, day)) if hours else [WHOLE_DAY])
    ]


def organisation(row: Organisation) -> OrganizationRead:
    return OrganizationRead(
        id=row.id,
        name=row.name,
        description=(
            f"{row.name} provides the community health and social care teams listed in this "
            "directory."
        ),
    )


def service(
    team: Team,
    locality: Locality | None,
    organisation_id: uuid.UUID | None,
    districts: list[str],
) -> ServiceRead:
    return ServiceRead(
        id=team.id,
        organization_id=organisation_id,
        name=team.name,
        description=description(team, locality),
        url=team.endpoint_url,
        status="temporarily closed" if team.operating_status == "closed" else "active",
        last_modified=team.last_modified_at,
        service_capacity=_capacities(team),
        schedules=_schedules(team),
        service_areas=[
            ServiceAreaRead(
                id=derived_id(team.id, "area", district),
                service_id=team.id,
                name=district,
                description=f"Postcode district {district}",
            )
            for district in districts
        ],
        attributes=[_attribute(team.id, term) for term in team_terms(team)],
    )


def description(team: Team, locality: Locality | None) -> str:
    where = locality.name if locality else "the whole county"
    return f"{team_type_label(team.team_type)} serving {where}"


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
        note = "UK local time. Open 24 hours, including bank holidays in England."
    else:
        hours = ServiceHours.model_validate(team.hours)
        bank_holidays = (
            f"bank holidays in England: {', '.join(sorted(hours.bank_holidays))}"
            if hours.bank_holidays
            else "closed on bank holidays in England"
        )
        note = f"UK local time; {bank_holidays}."
    return [
        ScheduleRead(
            id=derived_id(team.id, "schedule", opening.day, opening.text),
            service_id=team.id,
            byday=opening.byday,
            opens_at=opening.opens_at,
            closes_at=opening.closes_at,
            description=note,
        )
        for opening in weekly_ranges(team)
    ]


def _attribute(service_id: uuid.UUID, term: Term) -> AttributeRead:
    return AttributeRead(
        id=derived_id(service_id, "attribute", term.id),
        link_id=service_id,
        link_type=term.taxonomy.code,
        taxonomy_term_id=term.id,
        taxonomy_term=taxonomy_term(term),
    )


def service_at_location_id(cover: TeamPractice) -> uuid.UUID:
    return derived_id(cover.team_id, "at", cover.practice_id)


def service_at_location(cover: TeamPractice) -> ServiceAtLocationRead:
    practice = cover.practice
    link_id = service_at_location_id(cover)
    # In Model B, the team's linked worker for the practice.
    contacts = (
        [
            ContactRead(
                id=derived_id(link_id, "linked-worker"),
                service_id=cover.team_id,
                service_at_location_id=link_id,
                name=cover.linked_worker,
            )
        ]
        if cover.linked_worker
        else []
    )
    return ServiceAtLocationRead(
        id=link_id,
        service_id=cover.team_id,
        location_id=practice.id,
        location=LocationRead(
            id=practice.id,
            name=practice.name,
            description=f"GP practice {practice.ods_code}, postcode {practice.postcode}",
            external_identifier=practice.ods_code,
        ),
        contacts=contacts,
    )


def taxonomy(row: Taxonomy) -> TaxonomyRead:
    return TaxonomyRead(id=row.id, name=row.name, description=row.description)


def taxonomy_term(term: Term) -> TaxonomyTermRead:
    return TaxonomyTermRead(
        id=term.id,
        code=term.code,
        name=term.name,
        description=term.description,
        taxonomy=term.taxonomy.name,
        taxonomy_id=term.taxonomy.id,
    )
