"""Wire models of the teams service."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.shared.clock import Moment
from services.shared.identifiers import OdsCode, PostcodeDistrict
from services.shared.vocabulary import AssignmentKind, Escalation, Pathway, TeamType, Urgency


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


class RiskMarkers(BaseModel):
    """What puts a case on an MDT's high-risk worklist."""

    model_config = ConfigDict(extra="forbid")

    clinical_frailty_scale: int | None = Field(default=None, ge=1, le=9)
    long_term_conditions: int | None = Field(default=None, ge=0, le=30)
    end_of_life: bool = False


class LocalityRead(BaseModel):
    locality_code: str | None
    explanation: list[ResolutionStep]


class AssignmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    referral_id: uuid.UUID
    team_id: uuid.UUID
    kind: AssignmentKind = AssignmentKind.CARE
    pathway: Pathway | None = None
    urgency: Urgency
    decision_id: uuid.UUID | None = None
    risk: RiskMarkers = Field(default_factory=RiskMarkers)
    linked_worker: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="Model B: the team member linked to the patient's practice"
    )
    acceptance_window: timedelta | None = Field(
        default=None,
        gt=timedelta(0),
        le=timedelta(days=14),
        description=(
            "How long the team has to accept the case (ISO 8601 duration). For a pathway that "
            "can wait for the team to open, it counts only the team's service hours; for one "
            "its locality lists as time-critical, it runs from now. The answer's "
            "acceptance_due_at says when it ends."
        ),
    )


class WithdrawalCreate(BaseModel):
    """The referrer withdrew the referral: take it off the caseloads holding it."""

    model_config = ConfigDict(extra="forbid")

    referral_id: uuid.UUID
    kind: AssignmentKind = AssignmentKind.CARE
    reason: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")]


class AssignmentWithdrawal(BaseModel):
    """spa takes back a case the team has not accepted in time, to offer it to the next team."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")]


class AssignmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    referral_id: uuid.UUID
    team_id: uuid.UUID
    kind: AssignmentKind
    pathway: Pathway | None
    urgency: Urgency
    status: str
    decision_id: uuid.UUID | None
    linked_worker: str | None
    risk: RiskMarkers
    acceptance_due_at: datetime | None = Field(
        description="When the case goes to the next team unless accepted; null without a window"
    )
    accepted_at: datetime | None
    planned_first_contact_at: datetime | None
    first_contact_at: datetime | None
    declined_at: datetime | None
    decline_reason: str | None
    closed_at: datetime | None
    created_at: datetime


class CaseloadRead(BaseModel):
    team: TeamSummary
    items: list[AssignmentRead]


class DeclineReason(StrEnum):
    CAPACITY_FULL = "capacity_full"
    NOT_APPROPRIATE = "not_appropriate"
    WRONG_TEAM = "wrong_team"


class AcceptBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    planned_first_contact_at: Moment


class DeclineBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: DeclineReason
    note: str | None = Field(default=None, min_length=1, max_length=1000)


class FirstContactBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: Moment


class CloseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["completed", "no_longer_needed", "transferred"] = "completed"


class WorklistItem(AssignmentRead):
    reasons: list[str] = Field(description="Why the case is on the worklist")


class WorklistRead(BaseModel):
    team: TeamSummary
    items: list[WorklistItem]
