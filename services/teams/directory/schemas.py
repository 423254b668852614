"""Wire models of the directory."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.shared.clock import Moment
from services.shared.identifiers import OdsCode, PostcodeDistrict
from services.shared.pagination import Page
from services.shared.vocabulary import Escalation, Pathway, TeamType


class TeamSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    team_type: TeamType


class CoveredPractice(BaseModel):
    ods_code: str
    linked_worker: str | None = None


OperatingStatus = Literal["open", "pressured", "closed"]
EntityType = Literal["organisation", "locality", "practice", "team"]


class CapacityUpdate(BaseModel):
    """Capacity in the Open Referral / HSDS service_capacity shape, plus an operating status."""

    model_config = ConfigDict(extra="forbid")

    available: int = Field(ge=0, le=100_000)
    maximum: int = Field(ge=0, le=100_000)
    unit: str = Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$", examples=["cases"])
    operating_status: OperatingStatus = "open"

    @model_validator(mode="after")
    def _within_maximum(self) -> Self:
        if self.available > self.maximum:
            raise ValueError("available cannot exceed maximum")
        return self


class CapacityRead(BaseModel):
    available: int | None = Field(description="None when unknown: never reported, or too old")
    maximum: int | None
    unit: str | None
    updated: datetime | None
    known: bool
    operating_status: OperatingStatus


class TeamRead(TeamSummary):
    locality_code: str | None
    backup_team_id: uuid.UUID | None
    practices: list[CoveredPractice]
    disciplines: list[str]
    pathways: list[Pathway]
    hours: dict[str, Any] | None
    endpoint_url: str | None
    capacity: CapacityRead


class TeamPage(Page[TeamRead]):
    """Active teams, by code."""


class ResolutionStep(BaseModel):
    code: str = Field(description="Machine-readable step, e.g. practice_located, team_found")
    message: str


class ResolutionRead(BaseModel):
    outcome: Literal["team", "county_queue", "no_assignment"]
    team: TeamSummary | None
    linked_worker: str | None = None
    locality_code: str | None = None
    explanation: list[ResolutionStep]


class ResolutionQuery(BaseModel):
    """One question of a batch: the team for a pathway or an escalation, as ``GET /v1/resolve``
    asks it; with neither, only the patient's locality (outcome ``no_assignment``)."""

    model_config = ConfigDict(extra="forbid")

    practice: OdsCode | None = Field(default=None, description="Registered practice ODS code")
    district: PostcodeDistrict | None = Field(
        default=None, description="Postcode district: the fallback for an unknown practice"
    )
    pathway: Pathway | None = None
    escalation: Escalation | None = None
    at: Moment | None = Field(default=None, description="When the case arrives; now if absent")
    exclude: list[uuid.UUID] = Field(
        default_factory=list, max_length=20, description="Teams already tried, passed over"
    )

    @model_validator(mode="after")
    def _one_question(self) -> Self:
        if self.pathway is not None and self.escalation is not None:
            raise ValueError("give at most one of pathway or escalation")
        return self


class ResolutionBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queries: list[ResolutionQuery] = Field(min_length=1, max_length=500)


class ResolutionBatchRead(BaseModel):
    """One answer per query, in the order asked."""

    items: list[ResolutionRead]


class LocalityRead(BaseModel):
    locality_code: str | None
    explanation: list[ResolutionStep]


class DirectoryLoadRead(BaseModel):
    localities: int
    practices: int
    teams: int
    changes: int = Field(description="Entries created, updated or retired by this load")


class DirectoryChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str = Field(description="The client (or operator) that made the change")
    action: Literal["created", "updated", "retired"]
    entity_type: EntityType
    entity_code: str
    before: dict[str, Any] | None = Field(description="The entry before; null when created")
    after: dict[str, Any] | None = Field(description="The entry after; null when retired")


class DirectoryChangePage(Page[DirectoryChangeRead]):
    """The directory's changes, newest first."""
