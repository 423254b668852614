"""Wire models of the Open Referral UK feed: the part of HSDS 3.0 the directory fills.

Fields the directory has no value for are left out of the answer rather than sent as null
(HSDS types them as strings, numbers or objects, never null), so every optional field here
defaults to None and the routes drop None.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

ClockTime = Annotated[
    str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM, UK local time")
]
Weekday = Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


class ApiInfoRead(BaseModel):
    """What the feed is: HSDS's answer at the root of an API."""

    version: str = Field(description="The HSDS version the feed follows")
    profile: str = Field(description="Where the HSDS profile the feed follows is described")
    openapi_url: str = Field(description="The OpenAPI document that defines the feed's API")


class TaxonomyRead(BaseModel):
    id: uuid.UUID
    name: str
    description: str


class TaxonomyTermRead(BaseModel):
    id: uuid.UUID
    code: str = Field(description="The code the platform uses, e.g. rapid_response")
    name: str
    description: str
    taxonomy: str = Field(description="The name of the taxonomy the term belongs to")
    taxonomy_id: uuid.UUID


class AttributeRead(BaseModel):
    """A taxonomy term describing a service: its team type, a pathway it takes, a discipline."""

    id: uuid.UUID
    link_id: uuid.UUID = Field(description="The service the term describes")
    link_type: str = Field(description="What the term says of it: team_type, pathway, discipline")
    link_entity: Literal["service"] = "service"
    taxonomy_term_id: uuid.UUID
    taxonomy_term: TaxonomyTermRead


class CapacityUnitRead(BaseModel):
    id: uuid.UUID
    name: str = Field(description="What capacity is counted in, e.g. referrals or visits")


class ServiceCapacityRead(BaseModel):
    """The team's reported capacity, in the shape HSDS 3.1 gives ``service_capacity``."""

    id: uuid.UUID
    service_id: uuid.UUID
    available: int | None = None
    maximum: int | None = None
    unit: CapacityUnitRead | None = None
    updated: datetime


class ScheduleRead(BaseModel):
    """One weekly opening range, as an RFC 5545 recurrence rule in HSDS's fields."""

    id: uuid.UUID
    service_id: uuid.UUID
    freq: Literal["WEEKLY"] = "WEEKLY"
    wkst: Literal["MO"] = "MO"
    byday: Weekday
    opens_at: ClockTime
    closes_at: ClockTime
    description: str = Field(description="Time zone and bank-holiday hours in words")


class ServiceAreaRead(BaseModel):
    id: uuid.UUID
    service_id: uuid.UUID
    name: str = Field(description="A postcode district (outward code), e.g. XW1")
    description: str


class ContactRead(BaseModel):
    """A Model B team's linked worker for one practice."""

    id: uuid.UUID
    service_id: uuid.UUID
    service_at_location_id: uuid.UUID
    name: str
    title: Literal["Linked worker"] = "Linked worker"


class LocationRead(BaseModel):
    """A GP practice a team covers. The directory holds its postcode but not its address, so
    the postcode is given in the description: an HSDS address needs a street and a town."""

    id: uuid.UUID
    location_type: Literal["physical"] = "physical"
    name: str
    description: str
    external_identifier: str = Field(description="The practice's ODS code")
    external_identifier_type: Literal["ods_code"] = "ods_code"


class ServiceAtLocationRead(BaseModel):
    id: uuid.UUID
    service_id: uuid.UUID
    location_id: uuid.UUID
    location: LocationRead
    contacts: list[ContactRead]


class OrganizationRead(BaseModel):
    id: uuid.UUID
    name: str
    description: str


class ServiceRead(BaseModel):
    """One active team as an HSDS service."""

    id: uuid.UUID = Field(description="The team's id")
    organization_id: uuid.UUID | None = None
    name: str
    description: str
    url: str | None = Field(
        default=None, description="Where the team takes referrals, if it has an endpoint"
    )
    status: Literal["active", "temporarily closed"]
    last_modified: datetime = Field(
        description="When the team, or what is published with it, last changed"
    )
    service_capacity: list[ServiceCapacityRead] = Field(
        description="The team's last reported capacity; empty when it has never reported"
    )
    schedules: list[ScheduleRead]
    service_areas: list[ServiceAreaRead]
    attributes: list[AttributeRead] = Field(
        description="Its team type, the pathways it takes and its disciplines, as taxonomy terms"
    )


class ServiceDetailRead(ServiceRead):
    organization: OrganizationRead | None = None
    service_at_locations: list[ServiceAtLocationRead]


class OrganizationDetailRead(OrganizationRead):
    services: list[ServiceRead]


class PageRead(BaseModel):
    """HSDS 3.0's page envelope."""

    total_items: int
    total_pages: int
    page_number: int = Field(description="Starts at 1")
    size: int = Field(description="How many items this page holds")
    first_page: bool
    last_page: bool
    empty: bool


class ServicePage(PageRead):
    contents: list[ServiceRead]


class ServiceAtLocationPage(PageRead):
    contents: list[ServiceAtLocationRead]


class OrganizationPage(PageRead):
    contents: list[OrganizationRead]


class TaxonomyPage(PageRead):
    contents: list[TaxonomyRead]


class TaxonomyTermPage(PageRead):
    contents: list[TaxonomyTermRead]
