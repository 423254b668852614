"""Wire models of the Open Referral UK (HSDS 3.0) read API: the subset of HSDS the directory fills."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

ClockTime = Annotated[
    str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM, UK local time")
]
Weekday = Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


class CapacityUnitRead(BaseModel):
    id: uuid.UUID
    name: str = Field(description="What capacity is counted in, e.g. referrals or visits")


class ServiceCapacityRead(BaseModel):
    id: uuid.UUID
    service_id: uuid.UUID
    available: int | None
    maximum: int | None
    unit: CapacityUnitRead | None
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


class AddressRead(BaseModel):
    id: uuid.UUID
    location_id: uuid.UUID
    postal_code: str
    country: Literal["GB"] = "GB"
    address_type: Literal["physical"] = "physical"


class LocationRead(BaseModel):
    """A GP practice a team covers."""

    id: uuid.UUID
    location_type: Literal["physical"] = "physical"
    name: str
    external_identifier: str = Field(description="The practice's ODS code")
    external_identifier_type: Literal["ods_code"] = "ods_code"
    addresses: list[AddressRead]


class ServiceAtLocationRead(BaseModel):
    id: uuid.UUID
    service_id: uuid.UUID
    location_id: uuid.UUID
    location: LocationRead


class ServiceRead(BaseModel):
    """One active team as an HSDS service."""

    id: uuid.UUID = Field(description="The team's id")
    organization_id: uuid.UUID | None
    name: str
    description: str
    url: str | None = Field(description="Where the team takes referrals, if it has an endpoint")
    status: Literal["active", "temporarily closed"]
    service_capacity: list[ServiceCapacityRead] = Field(
        description="The team's last reported capacity; empty when it has never reported"
    )
    schedules: list[ScheduleRead]
    service_areas: list[ServiceAreaRead]


class ServiceDetailRead(ServiceRead):
    service_at_locations: list[ServiceAtLocationRead]


class PageRead(BaseModel):
    """The Open Referral UK page envelope."""

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
